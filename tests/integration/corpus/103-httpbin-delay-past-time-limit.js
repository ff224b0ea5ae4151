// about: a slow upstream beyond the call's time limit ends at the limit
// tool: execute
// config: httpbin
// error: time limit

async () => (await httpbin.request("GET /delay/{delay}", { delay: 8 })).data
