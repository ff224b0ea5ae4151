// about: optional chaining and ?? over fields the body may not have
// tool: execute
// config: bookshelf
// result: {"firstGenre": "science_fiction", "addedAt": "unknown", "tenth": "none"}

async () => {
  const { data } = await bookshelf.request("GET /books");
  return {
    firstGenre: data.books[0]?.genre ?? "unknown",
    addedAt: data.books[0]?.added_at ?? "unknown",
    tenth: data.books[9]?.title ?? "none",
  };
}
