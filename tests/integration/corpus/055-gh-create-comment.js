// about: a write: comment on an issue, the body field in the route's parameters
// tool: execute
// config: github
// result: {"status": 201, "body": "Me too", "url": "https://github.com/octocat/Hello-World/issues/1347#issuecomment-1"}

async () => {
  const { status, data } = await github.request("POST /repos/{owner}/{repo}/issues/{issue_number}/comments", {
    owner: "octocat",
    repo: "Hello-World",
    issue_number: 1347,
    body: "Me too",
  });
  return { status, body: data.body, url: data.html_url };
}
