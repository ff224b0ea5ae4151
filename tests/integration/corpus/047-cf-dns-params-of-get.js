// about: which filters the DNS list takes, names only
// tool: search
// config: cloudflare
// check: "type" in value and "per_page" in value and "zone_id" in value

async () => spec.paths["/zones/{zone_id}/dns_records"].get.parameters.map((p) => p.name)
