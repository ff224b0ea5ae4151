// about: how the API authenticates, from components.securitySchemes
// tool: search
// config: cloudflare
// check: "api_token" in value and value["api_token"]["type"] == "http"

async () =>
  Object.fromEntries(
    Object.entries(spec.components.securitySchemes).map(([name, s]) => [name, { type: s.type, scheme: s.scheme ?? s.name }]),
  )
