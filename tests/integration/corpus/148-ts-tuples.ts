// about: tuple types and a typed Map
// tool: execute
// config: bookshelf
// requires: typescript
// result: [["Kindred", 1979], ["The Left Hand of Darkness", 1969]]

async () => {
  const { data } = await bookshelf.request("GET /books");
  const years = new Map<string, number>(data.books.map((b: any): [string, number] => [b.title, b.year]));
  const sf: [string, number][] = [...years].filter(([title]) => title !== "A Wizard of Earthsea");
  return sf.sort((a, b) => b[1] - a[1]);
}
