// about: a bad path on GitHub: the error's example path is GitHub's, not Cloudflare's
// tool: execute
// config: github
// error: relative to the API's base URL
// absent: /zones
// error: must start with `/` ("/repos/octocat/Hello-World")

async () => github.request({ method: "GET", path: "repos/octocat/Hello-World" })
