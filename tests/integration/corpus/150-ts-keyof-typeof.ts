// about: keyof typeof over a lookup table
// tool: execute
// config: bookshelf
// requires: typescript
// result: ["fantasy: A Wizard of Earthsea"]

const labels = { fantasy: "Fantasy", science_fiction: "Science fiction" };
type Genre = keyof typeof labels;

const { data } = await bookshelf.request("GET /books");
const wanted: Genre = "fantasy";
return data.books.filter((b: { genre: Genre }) => b.genre === wanted).map((b: any) => `${wanted}: ${b.title}`);
