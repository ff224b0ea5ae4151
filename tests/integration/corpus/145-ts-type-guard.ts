// about: a user-defined type guard in a filter
// tool: execute
// config: github
// requires: typescript
// result: ["Found a bug"]

type Issue = { number: number; title: string; state: string; pull_request?: object };
const isPlainIssue = (i: Issue): i is Issue & { pull_request: undefined } => i.pull_request === undefined;

async () => {
  const { data } = await github.request("GET /repos/{owner}/{repo}/issues", { owner: "octocat", repo: "Hello-World" });
  return (data as Issue[]).filter(isPlainIssue).map((i) => i.title);
}
