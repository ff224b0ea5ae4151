// about: a generic arrow function (with the trailing comma .ts needs)
// tool: execute
// config: bookshelf
// requires: typescript
// result: "The Left Hand of Darkness"

const first = <T,>(xs: readonly T[]): T | undefined => xs[0];

const { data } = await bookshelf.request("GET /books");
return first<{ title: string }>(data.books)?.title;
