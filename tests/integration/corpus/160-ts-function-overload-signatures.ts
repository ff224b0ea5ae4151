// about: overload signatures before the implementation
// tool: execute
// config: bookshelf
// requires: typescript
// result: ["1969", 1969]

function year(b: { year: number }, asText: true): string;
function year(b: { year: number }, asText?: false): number;
function year(b: { year: number }, asText?: boolean): string | number {
  return asText ? String(b.year) : b.year;
}

const { data } = await bookshelf.request("GET /books");
[year(data.books[0], true), year(data.books[0])]
