// about: request("GET", "/zones"), two strings as some clients take them
// tool: execute
// config: cloudflare
// error: the route `GET` must be "METHOD /path"

async () => (await cloudflare.request("GET", "/zones")).result
