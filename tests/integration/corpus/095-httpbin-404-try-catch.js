// about: a 404 rejects with an error carrying status, method and path
// tool: execute
// config: httpbin
// result: {"name": "UpstreamError", "status": 404, "method": "GET", "path": "/status/404"}

async () => {
  try {
    await httpbin.request("GET /status/{codes}", { codes: 404 });
    return "found";
  } catch (e) {
    return { name: e.name, status: e.status, method: e.method, path: e.path };
  }
}
