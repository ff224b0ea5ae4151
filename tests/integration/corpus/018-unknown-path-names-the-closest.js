// about: a path that is not in the spec: 404 naming the documented ones nearby
// tool: execute
// config: bookshelf
// error: 404
// error: GET /books

async () => (await bookshelf.request("GET /book")).data
