// about: an enum value the spec does not allow (state: "opened"): 400 naming the parameter
// tool: execute
// config: github
// error: 400
// error: state

async () => (await github.request("GET /repos/{owner}/{repo}/issues", { owner: "octocat", repo: "Hello-World", state: "opened" })).data
