// about: axios-style {url, params}: the error lists the fields request() takes
// tool: execute
// config: cloudflare
// error: unknown field `url`
// error: method, path, query, body

async () => cloudflare.request({ url: "/zones", params: { per_page: 5 } })
