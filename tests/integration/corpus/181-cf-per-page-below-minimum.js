// about: per_page: 1 to get "just the first zone": the rehearsal's 400 names Cloudflare's minimum
// tool: execute
// config: cloudflare
// error: query.per_page: 1 is less than the minimum of 5
// error: search

async () => {
  const zones = await cloudflare.request("GET /zones", { per_page: 1 });
  return zones.result[0].id;
}
