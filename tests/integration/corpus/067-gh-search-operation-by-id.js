// about: find the operation by its operationId and say how to call it
// tool: search
// config: github
// result: ["GET /repos/{owner}/{repo}/pulls/{pull_number}/files", "List pull requests files"]

async () => {
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      if (op.operationId === "pulls/list-files") return [`${method.toUpperCase()} ${path}`, op.summary];
    }
  }
  return null;
}
