// about: `satisfies` on the parameters object
// tool: execute
// config: github
// requires: typescript
// result: [1347]

type IssueQuery = { owner: string; repo: string; state?: "open" | "closed" | "all"; per_page?: number };

const params = { owner: "octocat", repo: "Hello-World", state: "open", per_page: 20 } satisfies IssueQuery;
const { data } = await github.request("GET /repos/{owner}/{repo}/issues", params);
data.map((i: { number: number }) => i.number)
