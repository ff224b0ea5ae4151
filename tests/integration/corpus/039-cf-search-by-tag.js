// about: operations by tag, as "METHOD path" lines
// tool: search
// config: cloudflare
// check: "GET /accounts/{account_id}/workers/scripts" in value and len(value) <= 20

async () => {
  const out = [];
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      if (op?.tags?.includes("Worker Script")) out.push(`${method.toUpperCase()} ${path}`);
    }
  }
  return out.slice(0, 20);
}
