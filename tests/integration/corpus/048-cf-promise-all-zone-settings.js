// about: settings of several zones at once with Promise.all and destructuring
// tool: execute
// config: cloudflare
// check: isinstance(value, list) and len(value) >= 1 and all(isinstance(x["settings"], int) for x in value)

async () => {
  const { result: zones } = await cloudflare.request("GET /zones", { per_page: 5 });
  const settings = await Promise.all(
    zones.slice(0, 3).map(async ({ id, name }) => {
      const { result } = await cloudflare.request("GET /zones/{zone_id}/settings", { zone_id: id });
      return { name, settings: result.length };
    }),
  );
  return settings;
}
