// about: returning an object that refers to itself
// tool: execute
// config: bookshelf
// error: could not be turned into JSON
// error: circular

async () => {
  const { data } = await bookshelf.request("GET /books");
  const index = { books: data.books };
  for (const b of data.books) b.index = index;
  return index;
}
