// about: returning a Map of counts: it comes back as an object (string keys)
// tool: execute
// config: bookshelf
// check: value == {"science_fiction": 2, "fantasy": 1}

async () => {
  const { data } = await bookshelf.request("GET /books");
  const counts = new Map();
  for (const b of data.books) counts.set(b.genre, (counts.get(b.genre) ?? 0) + 1);
  return counts;
}
