// about: distinct commit authors with Array.from(new Set(...))
// tool: execute
// config: github
// check: isinstance(value, list) and len(value) == len(set(value)) and all(isinstance(a, str) for a in value)

async () => {
  const { data: commits } = await github.request("GET /repos/{owner}/{repo}/commits", { owner: "octocat", repo: "Hello-World", per_page: 50 });
  return Array.from(new Set(commits.map((c) => c.commit.author?.name ?? c.author?.login)));
}
