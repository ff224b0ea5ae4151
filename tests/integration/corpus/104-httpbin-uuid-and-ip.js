// about: two small reads in parallel, checked with a regular expression
// tool: execute
// config: httpbin
// result: {"uuid": true, "origin": "127.0.0.1"}

async () => {
  const [u, ip] = await Promise.all([httpbin.request("GET /uuid"), httpbin.request("GET /ip")]);
  return { uuid: /^[0-9a-f-]{36}$/.test(u.data.uuid), origin: ip.data.origin };
}
