// about: an async arrow with a return type and typed parameters
// tool: execute
// config: bookshelf
// requires: typescript
// result: ["The Left Hand of Darkness", "A Wizard of Earthsea", "Kindred"]

async (): Promise<string[]> => {
  const res = await bookshelf.request("GET /books");
  return res.data.books.map((b: { title: string }) => b.title);
}
