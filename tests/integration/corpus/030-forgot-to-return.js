// about: a body that computes but never returns: the answer says to return
// tool: execute
// config: bookshelf
// check: text.startswith("undefined") and "`return`" in text

async () => {
  const res = await bookshelf.request("GET /books");
  res.data.books.filter((b) => b.year < 1970);
}
