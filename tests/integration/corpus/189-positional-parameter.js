// about: a path parameter passed positionally instead of in an object
// tool: execute
// config: cloudflare
// error: the second argument must be an object of parameters

async () => (await cloudflare.request("GET /zones/{zone_id}", "023e105f4ecef8ad9ca31a8372d0c353")).result
