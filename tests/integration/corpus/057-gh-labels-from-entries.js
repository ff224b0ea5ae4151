// about: Object.fromEntries over the labels: name -> color
// tool: execute
// config: github
// result: {"bug": "#f29513", "enhancement": "#a2eeef"}

async () => {
  const { data } = await github.request("GET /repos/{owner}/{repo}/labels", { owner: "octocat", repo: "Hello-World" });
  return Object.fromEntries(data.map((l) => [l.name, `#${l.color}`]));
}
