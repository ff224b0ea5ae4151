// about: a route string without its method: the error shows the form
// tool: execute
// config: cloudflare
// error: must be "METHOD /path"

async () => (await cloudflare.request("/zones")).result
