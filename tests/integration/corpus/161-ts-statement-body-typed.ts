// about: a typed statement body with a top-level return
// tool: execute
// config: github
// requires: typescript
// result: {"login": "octocat", "type": "User"}

type User = { login: string; type: "User" | "Organization" };
const res = await github.request("GET /users/{username}", { username: "octocat" });
const user: User = res.data;
return { login: user.login, type: user.type };
