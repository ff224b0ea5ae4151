// about: a query string built with URLSearchParams on the path
// tool: execute
// config: httpbin
// requires: globals
// result: {"q": "code mode", "page": "2"}

async () => {
  const params = new URLSearchParams({ q: "code mode", page: "2" });
  const { data } = await httpbin.request(`GET /get?${params}`);
  return { q: data.args.q, page: data.args.page };
}
