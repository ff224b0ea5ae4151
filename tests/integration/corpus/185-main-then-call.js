// about: a main function defined, then called on the last line
// tool: execute
// config: bookshelf
// result: ["Kindred"]

const main = async () => {
  const { data } = await bookshelf.request("GET /books");
  return data.books.filter((b) => b.year > 1970).map((b) => b.title);
};
main();
