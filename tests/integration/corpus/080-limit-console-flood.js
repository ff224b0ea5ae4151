// about: heavy console.log output: the result still comes back, the console says what was dropped and why
// tool: execute
// config: limits
// bug: when the kept console text is over its token share (a quarter of max_output_tokens) it is cut from the end, and the note saying lines were dropped ([limits] console_kib, "Log less") is cut with it; with the default limits (16 KiB of console, 1,500 tokens) any heavy logging loses the note
// now: chars]
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
