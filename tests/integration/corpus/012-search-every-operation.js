// about: the README's search: every METHOD /path of the spec
// tool: search
// config: bookshelf
// result: ["GET /books", "POST /books", "GET /books/{book_id}", "DELETE /books/{book_id}", "GET /authors", "GET /authors/{author_id}", "GET /shelves/{shelf_id}"]

async () =>
  Object.entries(spec.paths).flatMap(([path, ops]) =>
    Object.keys(ops)
      .filter((m) => m !== "parameters")
      .map((m) => `${m.toUpperCase()} ${path}`),
  )
