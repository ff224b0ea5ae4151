// about: reading `spec` inside execute: the error says the spec is in search
// tool: execute
// config: bookshelf
// error: search
// error: the spec is only in `search`

async () => Object.keys(spec.paths)
