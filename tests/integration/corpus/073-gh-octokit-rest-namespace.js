// about: octokit's generated methods (github.rest.issues.listForRepo): should say to use github.request with the route
// tool: execute
// config: github
// bug: `github.rest.issues.listForRepo(...)` fails with a bare TypeError ("cannot read property 'issues' of undefined") instead of naming `github.request("GET /repos/{owner}/{repo}/issues", …)`
// now: cannot read property 'issues' of undefined
// error: github.request(

async () => {
  const { data } = await github.rest.issues.listForRepo({ owner: "octocat", repo: "Hello-World" });
  return data.map((i) => i.title);
}
