// about: a path parameter holding slashes (a file path), passed in the route's parameters
// tool: execute
// config: github
// result: {"type": "file", "name": "README.md", "encoding": "base64"}

async () => {
  const { data } = await github.request("GET /repos/{owner}/{repo}/contents/{path}", {
    owner: "octocat",
    repo: "Hello-World",
    path: "docs/guide/README.md",
    ref: "main",
  });
  return { type: data.type, name: data.name, encoding: data.encoding };
}
