// about: a method the path does not have: 405 listing the ones it has
// tool: execute
// config: bookshelf
// error: 405
// error: GET

async () => bookshelf.request("PUT /books", { title: "x" })
