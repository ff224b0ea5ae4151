// about: the number of paths per API, over Object.entries(specs)
// tool: search
// config: two-apis
// check: value["bookshelf"] == 5 and value["github"] > 500

async () => Object.fromEntries(Object.entries(specs).map(([name, s]) => [name, Object.keys(s.paths).length]))
