// about: the async arrow with a trailing semicolon, as models often end it
// tool: execute
// config: bookshelf
// result: 3

async () => {
  const { data } = await bookshelf.request("GET /books");
  return data.total;
};
