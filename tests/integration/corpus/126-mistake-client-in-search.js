// about: calling the API from search: should say requests belong in execute
// tool: search
// config: bookshelf
// bug: a client in search is a bare "bookshelf is not defined"; it should say search only reads the spec and requests go in `execute`
// now: bookshelf is not defined
// error: execute

async () => (await bookshelf.request("GET /books")).data.total
