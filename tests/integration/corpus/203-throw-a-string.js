// about: throwing a string instead of an Error: the message says to throw an Error
// tool: execute
// config: bookshelf
// error: no such book
// error: throw new Error(

async () => {
  const { data } = await bookshelf.request("GET /books");
  if (!data.books.some((b) => b.title === "Dune")) throw "no such book";
  return "found";
}
