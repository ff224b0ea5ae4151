// about: setting Authorization by hand is refused: the host adds the credential
// tool: execute
// config: cloudflare
// error: cannot be set from code

async () => cloudflare.request({ path: "/zones", headers: { Authorization: "Bearer my-token" } })
