// about: a result over the token cap is shortened, valid JSON, with a note on how to narrow it
// tool: execute
// config: limits
// check: isinstance(value, list) and len(value) < 5000 and "more items" in text and "shortened to fit" in full and ".slice(start, end)" in full

async () => {
  const { data } = await bookshelf.request("GET /books");
  return Array.from({ length: 5000 }, (_, i) => ({ i, ...data.books[i % 3] }));
}
