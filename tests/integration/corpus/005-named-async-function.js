// about: a named async function declaration instead of an arrow
// tool: execute
// config: bookshelf
// result: {"books": 3, "authorsIsArray": true}

async function main() {
  const books = (await bookshelf.request("GET /books")).data;
  const authors = (await bookshelf.request("GET /authors")).data;
  return { books: books.total, authorsIsArray: Array.isArray(authors) };
}
