// about: returning a Map of counts instead of a plain object
// tool: execute
// config: bookshelf
// bug: a Map (or Set) result comes back as `{}` — the data is lost without a word; it should be converted (a Map to an object or entries, a Set to an array) or be an error that says to convert it
// now: {}
// check: value == {"science_fiction": 2, "fantasy": 1} or value == [["science_fiction", 2], ["fantasy", 1]]

async () => {
  const { data } = await bookshelf.request("GET /books");
  const counts = new Map();
  for (const b of data.books) counts.set(b.genre, (counts.get(b.genre) ?? 0) + 1);
  return counts;
}
