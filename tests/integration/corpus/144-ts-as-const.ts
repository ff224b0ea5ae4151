// about: `as const` tuples declared before the async arrow that uses them
// tool: execute
// config: github
// requires: typescript
// result: {"octocat/Hello-World": 1347}

const repos = [["octocat", "Hello-World"]] as const;

async () => {
  const out: { [name: string]: number } = {};
  for (const [owner, repo] of repos) {
    const { data } = await github.request("GET /repos/{owner}/{repo}/issues", { owner, repo });
    out[`${owner}/${repo}`] = data[0].number;
  }
  return out;
}
