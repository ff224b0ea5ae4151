// about: calling the API from search: the error says requests belong in execute
// tool: search
// config: bookshelf
// error: execute
// error: `bookshelf` is a client of `execute`

async () => (await bookshelf.request("GET /books")).data.total
