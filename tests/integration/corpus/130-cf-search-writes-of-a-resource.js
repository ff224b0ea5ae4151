// about: search with a regex over paths and methods: every write under a zone's DNS
// tool: search
// config: cloudflare
// check: "POST /zones/{zone_id}/dns_records" in value and all(not v.startswith("GET") for v in value)

async () => {
  const re = /^\/zones\/\{zone_id\}\/dns_records/;
  return Object.entries(spec.paths)
    .filter(([p]) => re.test(p))
    .flatMap(([p, ops]) => ["post", "put", "patch", "delete"].filter((m) => ops[m]).map((m) => `${m.toUpperCase()} ${p}`));
}
