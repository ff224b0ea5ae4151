// about: response headers are there, lower-cased (Link for pagination)
// tool: execute
// config: github
// check: value["mock"] == "true" and value["hasLink"] is True and value["status"] == 200

async () => {
  const res = await github.request("GET /repos/{owner}/{repo}/issues", { owner: "octocat", repo: "Hello-World" });
  return { status: res.status, mock: res.headers["x-codemode-mock"], hasLink: "link" in res.headers };
}
