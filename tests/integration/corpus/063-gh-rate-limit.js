// about: reading a nested field with destructuring defaults
// tool: execute
// config: github
// result: {"limit": 5000, "remaining": 4999, "searchLeft": 18}

async () => {
  const { data: { resources: { core, search = { remaining: 0 } } } } = await github.request("GET /rate_limit");
  return { limit: core.limit, remaining: core.remaining, searchLeft: search.remaining };
}
