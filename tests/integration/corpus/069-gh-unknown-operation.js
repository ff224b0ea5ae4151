// about: a path that does not exist (singular "issue"): the 404 names the closest operations
// tool: execute
// config: github
// error: 404
// error: /repos/{owner}/{repo}/issues

async () => github.request("GET /repos/{owner}/{repo}/issue", { owner: "octocat", repo: "Hello-World" })
