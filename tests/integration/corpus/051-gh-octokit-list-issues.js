// about: octokit style: github.request("GET /repos/{owner}/{repo}/issues", {owner, repo, per_page})
// tool: execute
// config: github
// result: [{"number": 1347, "title": "Found a bug", "author": "octocat"}]

async () => {
  const owner = "octocat";
  const repo = "Hello-World";
  const { data: issues } = await github.request("GET /repos/{owner}/{repo}/issues", { owner, repo, per_page: 10, state: "open" });
  return issues.map(({ number, title, user }) => ({ number, title, author: user?.login }));
}
