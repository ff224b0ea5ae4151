// about: an Error the code throws comes back as the error, with its message
// tool: execute
// config: bookshelf
// error: Error
// error: no books after 2000

async () => {
  const { data } = await bookshelf.request("GET /books");
  const recent = data.books.filter((b) => b.year > 2000);
  if (recent.length === 0) throw new Error("no books after 2000");
  return recent;
}
