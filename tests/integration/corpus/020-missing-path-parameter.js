// about: a route template without a value for its parameter
// tool: execute
// config: bookshelf
// error: the route needs a value for `book_id`

async () => {
  const book = await bookshelf.request("GET /books/{book_id}");
  return book.data.title;
}
