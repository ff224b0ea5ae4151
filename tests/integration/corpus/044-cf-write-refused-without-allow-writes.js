// about: a write to an API configured read-only: refused, and the error says which setting
// tool: execute
// config: cloudflare
// error: PolicyError
// error: allow_writes

async () => {
  const zone = (await cloudflare.request("GET /zones", { per_page: 5 })).result[0];
  return cloudflare.request("POST /zones/{zone_id}/dns_records", {
    zone_id: zone.id,
    type: "A",
    name: "www.example.com",
    content: "198.51.100.4",
  });
}
