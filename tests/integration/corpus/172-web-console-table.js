// about: console.table of rows comes back as console output
// tool: execute
// config: bookshelf
// requires: globals
// result: 3
// console: Kindred
// console: 1979

async () => {
  const { data } = await bookshelf.request("GET /books");
  console.table(data.books.map(({ title, year }) => ({ title, year })));
  return data.books.length;
}
