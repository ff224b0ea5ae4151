// about: the object form with a query object on GitHub
// tool: execute
// config: github
// result: ["Amazing new feature"]

async () => {
  const res = await github.request({
    method: "GET",
    path: "/repos/octocat/Hello-World/pulls",
    query: { state: "open", per_page: 5, sort: "updated" },
  });
  return res.data.map((pr) => pr.title);
}
