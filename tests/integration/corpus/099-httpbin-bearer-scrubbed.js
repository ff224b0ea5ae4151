// about: the bearer token the host added is accepted, and never shown to the code
// tool: execute
// config: httpbin
// absent: corpus-httpbin-token-0123456789
// result: {"authenticated": true, "token": "[REDACTED]"}

async () => (await httpbin.request("GET /bearer")).data
