// about: an interface and an `as` cast over the response body
// tool: execute
// config: bookshelf
// requires: typescript
// result: [1968, 1969, 1979]

interface Book {
  id: string;
  title: string;
  year: number;
  genre?: string;
}

async () => {
  const res = await bookshelf.request("GET /books");
  const books = res.data.books as Book[];
  return books.map((b) => b.year).sort((a, b) => a - b);
}
