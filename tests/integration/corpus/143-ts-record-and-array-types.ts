// about: Record and Array<...> annotations in a grouping
// tool: execute
// config: bookshelf
// requires: typescript
// result: {"science_fiction": 2, "fantasy": 1}

async () => {
  const { data } = await bookshelf.request("GET /books");
  const counts: Record<string, number> = {};
  const books: Array<{ genre: string }> = data.books;
  for (const b of books) counts[b.genre] = (counts[b.genre] ?? 0) + 1;
  return counts;
}
