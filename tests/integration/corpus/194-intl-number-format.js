// about: Intl.NumberFormat to format a total: QuickJS has no Intl
// tool: execute
// config: bookshelf
// bug: `Intl` is a bare "Intl is not defined" ReferenceError; like `fetch` and `require` it should get a hint (no Intl here: format with `toFixed`, `padStart`, or a small helper for thousands separators)
// now: Intl is not defined
// error: Intl is not defined —

async () => {
  const { data } = await bookshelf.request("GET /books");
  const fmt = new Intl.NumberFormat("en-US");
  return data.books.map((b) => `${b.title}: ${fmt.format(b.year)}`);
}
