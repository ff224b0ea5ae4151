// about: for await over an array of request promises started at once
// tool: execute
// config: github
// result: ["octocat", "octocat", "octocat"]

async () => {
  const users = ["octocat", "hubot", "monalisa"].map((username) => github.request("GET /users/{username}", { username }));
  const logins = [];
  for await (const res of users) logins.push(res.data.login);
  return logins;
}
