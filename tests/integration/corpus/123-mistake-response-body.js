// about: `.body` (node-fetch/superagent habit) says where the body is
// tool: execute
// config: github
// error: has no `.body`
// error: `.data`

async () => {
  const res = await github.request("GET /users/{username}", { username: "octocat" });
  return res.body.login;
}
