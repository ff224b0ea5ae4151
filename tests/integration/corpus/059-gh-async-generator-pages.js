// about: an async generator of pages consumed with for await
// tool: execute
// config: github
// result: ["Amazing new feature"]

async () => {
  async function* pages(route, params) {
    for (let page = 1; page <= 5; page++) {
      const { data } = await github.request(route, { ...params, page, per_page: 30 });
      yield data;
      if (data.length < 30) return;
    }
  }
  const titles = [];
  for await (const pulls of pages("GET /repos/{owner}/{repo}/pulls", { owner: "octocat", repo: "Hello-World" })) {
    titles.push(...pulls.map((p) => p.title));
  }
  return titles;
}
