// about: a string enum for the state parameter
// tool: execute
// config: github
// requires: typescript
// result: {"state": "closed", "count": 1}

enum State {
  Open = "open",
  Closed = "closed",
}

const { data } = await github.request("GET /repos/{owner}/{repo}/pulls", { owner: "octocat", repo: "Hello-World", state: State.Closed });
return { state: State.Closed, count: data.length };
