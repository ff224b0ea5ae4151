// about: URL in search, to read the server's base path
// tool: search
// config: bookshelf
// requires: globals
// result: {"host": "bookshelf.example.com", "path": "/v1"}

async () => {
  const url = new URL(spec.servers[0].url);
  return { host: url.host, path: url.pathname };
}
