// about: definite assignment (`let x!: T`) and a union type
// tool: execute
// config: bookshelf
// requires: typescript
// result: "fantasy"

let genre!: "fantasy" | "science_fiction";
const { data } = await bookshelf.request("GET /books");
for (const b of data.books) if (b.year < 1969) genre = b.genre;
return genre;
