// about: a query parameter beyond the spec's maximum: the rehearsal's 400 names it
// tool: execute
// config: cloudflare
// error: 400
// error: per_page

async () => (await cloudflare.request("GET /zones", { per_page: 5000 })).result.length
