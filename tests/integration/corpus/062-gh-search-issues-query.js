// about: the search API with a q string full of qualifiers
// tool: execute
// config: github
// check: value["total"] == 280 and value["first"]["number"] == 132

async () => {
  const q = ["is:issue", "is:open", "label:bug", "repo:octocat/Hello-World"].join(" ");
  const { data } = await github.request("GET /search/issues", { q, sort: "created", order: "desc" });
  const [first] = data.items;
  return { total: data.total_count, first: { number: first.number, title: first.title } };
}
