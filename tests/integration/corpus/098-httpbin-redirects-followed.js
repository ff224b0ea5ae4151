// about: redirects inside the API are followed for reads; the final answer comes back
// tool: execute
// config: httpbin
// check: value["status"] == 200 and value["url"].endswith("/get")

async () => {
  const res = await httpbin.request("GET /redirect/{n}", { n: 2 });
  return { status: res.status, url: res.data.url };
}
