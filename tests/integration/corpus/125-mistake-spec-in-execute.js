// about: reading `spec` inside execute: should say the spec is in search
// tool: execute
// config: bookshelf
// bug: `spec` in execute is a bare "spec is not defined"; it should say the spec is a global of `search`, and execute has the clients
// now: spec is not defined
// error: search

async () => Object.keys(spec.paths)
