// about: a response is exactly {status, headers, data} to Object.keys and JSON
// tool: execute
// config: bookshelf
// result: {"keys": ["status", "headers", "data"], "json": ["status", "headers", "data"]}

async () => {
  const res = await bookshelf.request("GET /books");
  return { keys: Object.keys(res), json: Object.keys(JSON.parse(JSON.stringify(res))) };
}
