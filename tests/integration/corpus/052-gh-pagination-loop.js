// about: a pagination loop that stops on a short page
// tool: execute
// config: github
// result: {"pages": 1, "issues": [1347]}

async () => {
  const per_page = 100;
  const all = [];
  let page = 1;
  while (true) {
    const res = await github.request("GET /repos/{owner}/{repo}/issues", { owner: "octocat", repo: "Hello-World", per_page, page });
    all.push(...res.data);
    if (res.data.length < per_page) break;
    page += 1;
  }
  return { pages: page, issues: all.map((i) => i.number) };
}
