// about: codemode.find ranks the operation to comment on an issue near the top
// tool: search
// config: github
// requires: find
// check: "POST /repos/{owner}/{repo}/issues/{issue_number}/comments" in [e["name"] for e in value] and len(value) <= 5

async () => {
  const hits = await codemode.find("create a comment on an issue", { limit: 5 });
  return hits.map(({ name, api, summary }) => ({ name, api, summary }));
}
