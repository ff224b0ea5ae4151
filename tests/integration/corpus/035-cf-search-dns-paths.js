// about: the blog's search: spec.paths scanned with Object.entries and a filter on the path
// tool: search
// config: cloudflare
// check: ["/zones/{zone_id}/dns_records", ["get", "post"]] in value and all("dns" in p for p, _ in value)

async () => {
  return Object.entries(spec.paths)
    .filter(([path]) => path.includes("dns_records"))
    .map(([path, ops]) => [path, Object.keys(ops).filter((m) => m !== "parameters")]);
}
