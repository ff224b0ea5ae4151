// about: helper declarations first, then the async arrow to run (the arrow is the script's last value)
// tool: execute
// config: github
// bug: when the script form's last value is a function (helpers declared, then the async arrow), the arrow is never called and the answer is "undefined (the code returned no value; `return` the data you need)", which is wrong (the code does return); it should be called, as in the expression form
// now: undefined (the code returned no value
// result: ["#1347 Found a bug"]

const OWNER = "octocat";

function titleOf(issue) {
  return `#${issue.number} ${issue.title}`;
}

async () => {
  const { data } = await github.request("GET /repos/{owner}/{repo}/issues", { owner: OWNER, repo: "Hello-World" });
  return data.map(titleOf);
}
