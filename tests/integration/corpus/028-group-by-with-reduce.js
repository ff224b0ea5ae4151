// about: grouping with reduce into an object of arrays
// tool: execute
// config: bookshelf
// result: {"science_fiction": ["The Left Hand of Darkness", "Kindred"], "fantasy": ["A Wizard of Earthsea"]}

async () => {
  const { data } = await bookshelf.request("GET /books");
  return data.books.reduce((acc, book) => {
    (acc[book.genre] ||= []).push(book.title);
    return acc;
  }, {});
}
