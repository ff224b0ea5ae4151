// about: Cloudflare habits on an API without the envelope: `.result` says where the body is
// tool: execute
// config: bookshelf
// error: has no `.result`
// error: `.data`
// error: `books`

async () => {
  const response = await bookshelf.request("GET /books");
  return response.result.map((b) => b.title);
}
