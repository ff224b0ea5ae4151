// about: with two APIs, search has `specs` by name and no single `spec`
// tool: search
// config: two-apis
// result: {"apis": ["bookshelf", "github"], "spec": "undefined", "bookshelfPaths": 5}

async () => ({
  apis: Object.keys(specs).sort(),
  spec: typeof spec,
  bookshelfPaths: Object.keys(specs.bookshelf.paths).length,
})
