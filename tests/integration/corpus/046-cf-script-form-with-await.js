// about: top-level await without a function, Cloudflare style
// tool: execute
// config: cloudflare
// result: true

const zones = await cloudflare.request("GET /zones");
zones.success && Array.isArray(zones.result)
