// about: the Cloudflare blog's shape: response.result.map over the envelope
// tool: execute
// config: cloudflare
// check: isinstance(value, list) and len(value) >= 1 and all({"id", "name"} <= set(z) <= {"id", "name", "status"} for z in value)

async () => {
  const response = await cloudflare.request('GET /zones', { per_page: 5 });
  return response.result.map((zone) => ({ id: zone.id, name: zone.name, status: zone.status }));
}
