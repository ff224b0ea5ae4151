// about: fetch() with the API's URL: the error shows the client call to use instead
// tool: execute
// config: bookshelf
// error: fetch is not defined
// error: bookshelf.request('GET /books')

async () => {
  const res = await fetch("https://bookshelf.example.com/v1/books");
  return (await res.json()).books;
}
