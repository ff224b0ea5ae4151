// about: the limit is respected
// tool: search
// config: bookshelf
// requires: find
// result: 2

async () => (await codemode.find("books", { limit: 2 })).length
