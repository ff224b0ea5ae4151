// about: an operation whose security the rehearsal enforces: 401, named
// tool: execute
// config: bookshelf
// error: 401
// error: bearer

async () => bookshelf.request("DELETE /books/{book_id}", { book_id: "5f0c7a1e-2d3b-4c5d-8e9f-0a1b2c3d4e5f" })
