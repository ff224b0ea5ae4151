// about: the object form for a write: method, path built with a template literal, body
// tool: execute
// config: github
// result: [201, 1347]

async () => {
  const owner = "octocat", repo = "Hello-World";
  const res = await github.request({
    method: "POST",
    path: `/repos/${owner}/${repo}/issues`,
    body: { title: "Found a bug", body: "I'm having a problem with this.", labels: ["bug"] },
  });
  return [res.status, res.data.number];
}
