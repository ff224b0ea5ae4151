// about: a generic helper with a keyof constraint
// tool: execute
// config: github
// requires: typescript
// result: ["bug", "enhancement"]

function pluck<T, K extends keyof T>(items: T[], key: K): T[K][] {
  return items.map((item) => item[key]);
}

const { data } = await github.request("GET /repos/{owner}/{repo}/labels", { owner: "octocat", repo: "Hello-World" });
return pluck(data as { name: string; color: string }[], "name");
