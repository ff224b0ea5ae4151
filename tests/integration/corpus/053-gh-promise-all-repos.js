// about: several repositories at once, Promise.all over an array of names
// tool: execute
// config: github
// result: [{"full_name": "octocat/Hello-World", "stars": 80, "language": null}, {"full_name": "octocat/Hello-World", "stars": 80, "language": null}]

async () => {
  const repos = ["Hello-World", "Spoon-Knife"];
  const results = await Promise.all(
    repos.map((repo) => github.request("GET /repos/{owner}/{repo}", { owner: "octocat", repo })),
  );
  return results.map((r) => ({ full_name: r.data.full_name, stars: r.data.stargazers_count, language: r.data.language ?? null }));
}
