// about: a syntax error is reported with its line in the model's code
// tool: execute
// config: bookshelf
// error: SyntaxError
// error: line 3

async () => {
  const res = await bookshelf.request("GET /books");
  const titles = res.data.books.map((b) => b.title;
  return titles;
}
