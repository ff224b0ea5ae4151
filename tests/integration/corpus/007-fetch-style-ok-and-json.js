// about: fetch habits: check response.ok, then await response.json()
// tool: execute
// config: bookshelf
// result: 3

async () => {
  const response = await bookshelf.request("GET /books");
  if (!response.ok) {
    throw new Error(`HTTP ${response.status}`);
  }
  const body = await response.json();
  return body.total;
}
