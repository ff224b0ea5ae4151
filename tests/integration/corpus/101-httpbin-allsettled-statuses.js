// about: Promise.allSettled over several status codes, sorting successes from failures
// tool: execute
// config: httpbin
// result: [["200", "fulfilled", 200], ["404", "rejected", 404], ["500", "rejected", 500]]

async () => {
  const codes = ["200", "404", "500"];
  const results = await Promise.allSettled(codes.map((codes) => httpbin.request("GET /status/{codes}", { codes })));
  return results.map((r, i) => [codes[i], r.status, r.status === "fulfilled" ? r.value.status : r.reason.status]);
}
