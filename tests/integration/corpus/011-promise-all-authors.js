// about: fan out with Promise.all over the distinct authors of the books
// tool: execute
// config: bookshelf
// check: len(value) == 2 and all(isinstance(n, str) and n for n in value)

async () => {
  const { data } = await bookshelf.request("GET /books");
  const ids = [...new Set(data.books.map((b) => b.author_id))];
  const authors = await Promise.all(
    ids.map((author_id) => bookshelf.request("GET /authors/{author_id}", { author_id })),
  );
  return authors.map((a) => a.data.name);
}
