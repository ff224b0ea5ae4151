// about: plain statements ending in a top-level return (a function body)
// tool: execute
// config: bookshelf
// result: ["The Left Hand of Darkness", "Kindred"]

const { data } = await bookshelf.request("GET /books", { genre: "science_fiction" });
const titles = data.books.filter((b) => b.genre === "science_fiction").map((b) => b.title);
return titles;
