// about: query parameters from the route form's extra fields (numbers become text)
// tool: execute
// config: httpbin
// result: {"page": "2", "q": "code mode", "tags": "a,b"}

async () => (await httpbin.request("GET /get", { q: "code mode", page: 2, tags: ["a", "b"].join(",") })).data.args
