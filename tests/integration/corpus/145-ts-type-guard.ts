// about: a user-defined type guard in a filter
// tool: execute
// config: github
// requires: typescript
// result: ["Found a bug"]

type Issue = { number: number; title: string; state: string; pull_request?: object };
const isPullRequest = (i: Issue): i is Issue & { pull_request: object } => i.pull_request !== undefined;

const { data } = await github.request("GET /repos/{owner}/{repo}/issues", { owner: "octocat", repo: "Hello-World" });
return (data as Issue[]).filter(isPullRequest).map((i) => i.title);
