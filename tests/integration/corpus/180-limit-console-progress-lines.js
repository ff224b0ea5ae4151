// about: a long progress log: the result comes back, the console keeps its first 4 KiB and says why the rest is gone
// tool: execute
// config: limits
// result: 600
// console: processing book 0 of 600
// console: ([limits] console_kib)
// console: Log less

async () => {
  const { data } = await bookshelf.request("GET /books");
  let done = 0;
  for (let i = 0; i < 600; i++) {
    const book = data.books[i % data.books.length];
    console.log(`processing book ${i} of 600`);
    done += book ? 1 : 0;
  }
  return done;
}
