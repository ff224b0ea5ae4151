// about: fetch habit: check res.status after the await; a non-2xx rejects instead, and the error names the status
// tool: execute
// config: httpbin
// error: 404
// error: /status/404

async () => {
  const res = await httpbin.request("GET /status/404");
  if (res.status === 404) return "not found";
  return res.data;
}
