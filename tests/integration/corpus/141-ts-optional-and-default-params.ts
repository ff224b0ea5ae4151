// about: optional and defaulted typed parameters
// tool: execute
// config: bookshelf
// requires: typescript
// result: ["The Left Hand of Darkness", "Kindred"]

async function titles(genre?: string, limit: number = 10): Promise<string[]> {
  const { data } = await bookshelf.request("GET /books", genre ? { genre } : {});
  return data.books.filter((b: any) => !genre || b.genre === genre).slice(0, limit).map((b: any) => b.title);
}

return titles("science_fiction");
