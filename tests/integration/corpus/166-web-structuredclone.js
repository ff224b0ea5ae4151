// about: structuredClone for a deep copy before changing it
// tool: execute
// config: bookshelf
// requires: globals
// result: {"original": "The Left Hand of Darkness", "copy": "THE LEFT HAND OF DARKNESS", "deep": false}

async () => {
  const { data } = await bookshelf.request("GET /books");
  const copy = structuredClone(data);
  copy.books[0].title = copy.books[0].title.toUpperCase();
  return { original: data.books[0].title, copy: copy.books[0].title, deep: copy.books === data.books };
}
