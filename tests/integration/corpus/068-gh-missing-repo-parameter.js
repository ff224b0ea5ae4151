// about: octokit call without one of its path parameters
// tool: execute
// config: github
// error: the route needs a value for `repo`

async () => {
  const { data } = await github.request("GET /repos/{owner}/{repo}/issues", { owner: "octocat", per_page: 5 });
  return data.length;
}
