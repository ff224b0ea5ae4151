// about: a summary computed in the code, so only the numbers come back
// tool: execute
// config: github
// check: value["openIssues"] == 1 and value["pulls"] == 1 and value["labels"] == 2 and isinstance(value["repo"], str)

async () => {
  const base = { owner: "octocat", repo: "Hello-World" };
  const [repo, issues, pulls, labels] = await Promise.all([
    github.request("GET /repos/{owner}/{repo}", base),
    github.request("GET /repos/{owner}/{repo}/issues", { ...base, state: "open" }),
    github.request("GET /repos/{owner}/{repo}/pulls", base),
    github.request("GET /repos/{owner}/{repo}/labels", base),
  ]);
  return { repo: repo.data.full_name, openIssues: issues.data.length, pulls: pulls.data.length, labels: labels.data.length };
}
