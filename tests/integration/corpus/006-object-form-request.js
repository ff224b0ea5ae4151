// about: the object form of request with method, path and query
// tool: execute
// config: bookshelf
// result: [200, "true"]

async () => {
  const r = await bookshelf.request({ method: "GET", path: "/books", query: { per_page: 2 } });
  return [r.status, r.headers["x-codemode-mock"]];
}
