// about: chaining: the first zone's A records, octokit-style route with a path parameter
// tool: execute
// config: cloudflare
// check: value["zone"] and isinstance(value["records"], list) and all(isinstance(r, dict) for r in value["records"])

async () => {
  const zones = await cloudflare.request("GET /zones", { per_page: 5 });
  const zone = zones.result[0];
  const dns = await cloudflare.request("GET /zones/{zone_id}/dns_records", { zone_id: zone.id, type: "A", per_page: 50 });
  return { zone: zone.name, records: dns.result.map((r) => ({ name: r.name, type: r.type, content: r.content })) };
}
