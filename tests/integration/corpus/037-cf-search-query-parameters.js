// about: the query parameters an operation takes, names and types
// tool: search
// config: cloudflare
// check: {"name": "per_page", "in": "query", "type": "number"} in value and any(p["name"] == "account.id" for p in value)

async () => {
  const op = spec.paths["/zones"].get;
  return op.parameters.map((p) => ({ name: p.name, in: p.in, type: p.schema?.type }));
}
