// about: a path without its leading slash
// tool: execute
// config: github
// error: must start with `/`

async () => github.request({ method: "GET", path: "users/octocat" })
