// about: JSON.stringify of all of Cloudflare's spec "to see its size": the memory limit, and what to do instead
// tool: search
// config: cloudflare
// error: memory limit
// error: filter

async () => JSON.stringify(spec).length
