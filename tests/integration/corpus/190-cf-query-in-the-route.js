// about: the query string written into the route itself
// tool: execute
// config: cloudflare
// check: value["status"] == 200 and value["zones"] >= 1

async () => {
  const res = await cloudflare.request("GET /zones?per_page=5&status=active&order=name");
  return { status: res.status, zones: res.result.length };
}
