// about: Cloudflare's `.result` on GitHub's plain array body
// tool: execute
// config: github
// error: has no `.result`
// error: an array

async () => {
  const res = await github.request("GET /repos/{owner}/{repo}/issues", { owner: "octocat", repo: "Hello-World" });
  return res.result.map((i) => i.title);
}
