// about: find an operation, then ask for its TypeScript declaration by the name find gave
// tool: search
// config: cloudflare
// requires: find
// check: isinstance(value, dict) and "dns_records" in value["name"] and "zone_id" in value["types"]

async () => {
  const [hit] = await codemode.find("list DNS records of a zone", { limit: 3 });
  return { name: hit.name, types: await codemode.types(hit.name) };
}
