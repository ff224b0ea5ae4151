// about: a bare expression in search, no function around it
// tool: search
// config: bookshelf
// result: ["/books", "/books/{book_id}", "/authors", "/authors/{author_id}", "/shelves/{shelf_id}"]

Object.keys(spec.paths)
