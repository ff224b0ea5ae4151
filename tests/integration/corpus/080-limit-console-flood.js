// about: heavy console.log output: the result still comes back, the console says what was dropped and why
// tool: execute
// config: limits
// result: 2000
// console: console_kib
// console: Log less

async () => {
  const { data } = await bookshelf.request("GET /books");
  let i = 0;
  for (; i < 2000; i++) {
    console.log(`row ${i}: ${JSON.stringify(data.books[i % 3])}`);
  }
  return i;
}
