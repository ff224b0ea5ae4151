// about: a lower-case method in the route is fine
// tool: execute
// config: github
// result: "octocat"

async () => (await github.request("get /users/{username}", { username: "octocat" })).data.login
