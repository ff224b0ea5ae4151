// about: the non-null assertion operator
// tool: execute
// config: github
// requires: typescript
// result: "octocat"

async () => {
  const { data } = await github.request("GET /repos/{owner}/{repo}/issues", { owner: "octocat", repo: "Hello-World" });
  const first = data[0]!;
  return first.user!.login;
}
