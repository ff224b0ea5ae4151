// about: recent built-ins models reach for: Object.groupBy, toSorted, findLast, at, iterator helpers
// tool: execute
// config: bookshelf
// result: {"genres": ["science_fiction", "fantasy"], "oldest": 1968, "lastSf": "Kindred", "last": "Kindred", "doubled": [3938, 3936, 3958]}

async () => {
  const { data } = await bookshelf.request("GET /books");
  const { books } = data;
  return {
    genres: Object.keys(Object.groupBy(books, (b) => b.genre)),
    oldest: books.toSorted((a, b) => a.year - b.year)[0].year,
    lastSf: books.findLast((b) => b.genre === "science_fiction").title,
    last: books.at(-1).title,
    doubled: books.values().map((b) => b.year * 2).toArray(),
  };
}
