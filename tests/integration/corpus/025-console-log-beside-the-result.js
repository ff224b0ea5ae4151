// about: console.log output comes back beside the result
// tool: execute
// config: bookshelf
// result: 3
// console: fetched 3 books
// console: {"first":"The Left Hand of Darkness"}

async () => {
  const { data } = await bookshelf.request("GET /books");
  console.log(`fetched ${data.books.length} books`);
  console.log({ first: data.books[0].title });
  return data.total;
}
