// about: an immediately invoked async arrow: its promise is awaited
// tool: execute
// config: bookshelf
// result: 3

(async () => {
  const { data } = await bookshelf.request("GET /books");
  return data.total;
})()
