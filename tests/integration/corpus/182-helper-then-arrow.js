// about: helper declarations first, then the async arrow to run (the arrow is the script's last value)
// tool: execute
// config: github
// result: ["#1347 Found a bug"]

const OWNER = "octocat";

function titleOf(issue) {
  return `#${issue.number} ${issue.title}`;
}

async () => {
  const { data } = await github.request("GET /repos/{owner}/{repo}/issues", { owner: OWNER, repo: "Hello-World" });
  return data.map(titleOf);
}
