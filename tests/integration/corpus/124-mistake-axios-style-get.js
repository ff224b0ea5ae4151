// about: axios-style client.get(path): the error names the method it has, request()
// tool: execute
// config: cloudflare
// error: cloudflare.request(
// error: cloudflare.request("GET /zones")

async () => {
  const { data } = await cloudflare.get("/zones");
  return data.result;
}
