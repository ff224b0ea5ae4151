// about: a string result (pretty JSON made by the code) comes back as is
// tool: execute
// config: bookshelf
// result: "{\n  \"total\": 3,\n  \"first\": \"The Left Hand of Darkness\"\n}"

async () => {
  const { data } = await bookshelf.request("GET /books");
  return JSON.stringify({ total: data.total, first: data.books[0].title }, null, 2);
}
