// about: a script with top-level await whose last expression is the result
// tool: execute
// config: bookshelf
// result: ["1968: A Wizard of Earthsea", "1969: The Left Hand of Darkness", "1979: Kindred"]

const res = await bookshelf.request("GET /books");
const byYear = [...res.data.books].sort((a, b) => a.year - b.year);
byYear.map((b) => `${b.year}: ${b.title}`)
