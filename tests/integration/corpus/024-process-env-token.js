// about: reading a token from process.env: credentials stay in the host
// tool: execute
// config: bookshelf
// error: process is not defined
// error: credentials stay in the host

async () => {
  const token = process.env.BOOKSHELF_TOKEN;
  return bookshelf.request({ path: "/books", headers: { "X-Token": token } });
}
