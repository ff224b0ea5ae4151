// about: search the GitHub spec: the issue operations that write, by tag
// tool: search
// config: github
// check: "POST /repos/{owner}/{repo}/issues" in value and "POST /repos/{owner}/{repo}/issues/{issue_number}/comments" in value

async () => {
  const writes = [];
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      if (method !== "get" && op.tags?.includes("issues")) writes.push(`${method.toUpperCase()} ${path}`);
    }
  }
  return writes;
}
