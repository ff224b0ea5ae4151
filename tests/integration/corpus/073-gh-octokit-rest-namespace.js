// about: octokit's generated methods (github.rest.issues.listForRepo): the error says to use github.request with the route
// tool: execute
// config: github
// error: github.request(
// error: `github.rest` does not exist

async () => {
  const { data } = await github.rest.issues.listForRepo({ owner: "octocat", repo: "Hello-World" });
  return data.map((i) => i.title);
}
