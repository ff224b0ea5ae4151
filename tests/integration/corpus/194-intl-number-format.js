// about: Intl.NumberFormat to format a total: QuickJS has no Intl, the error says how to format by hand
// tool: execute
// config: bookshelf
// error: Intl is not defined —
// error: format by hand

async () => {
  const { data } = await bookshelf.request("GET /books");
  const fmt = new Intl.NumberFormat("en-US");
  return data.books.map((b) => `${b.title}: ${fmt.format(b.year)}`);
}
