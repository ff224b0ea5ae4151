// about: headers the server sets are readable, lower-cased
// tool: execute
// config: httpbin
// result: ["yes", "application/json"]

async () => {
  const res = await httpbin.request("GET /response-headers", { "X-Corpus": "yes" });
  return [res.headers["x-corpus"], res.headers["content-type"]];
}
