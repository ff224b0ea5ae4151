// about: axios-style client.get(path): should name the method it has, request()
// tool: execute
// config: cloudflare
// bug: `cloudflare.get(...)` is a bare "not a function" TypeError; it should say the client has `request` and show `cloudflare.request('GET /zones')`
// now: not a function
// error: cloudflare.request(

async () => {
  const { data } = await cloudflare.get("/zones");
  return data.result;
}
