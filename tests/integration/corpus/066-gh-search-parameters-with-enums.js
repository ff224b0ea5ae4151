// about: parameters with their enums and defaults, from resolved component parameters
// tool: search
// config: github
// check: value["state"]["enum"] == ["open", "closed", "all"] and value["state"]["default"] == "open" and value["per_page"]["default"] == 30

async () => {
  const params = spec.paths["/repos/{owner}/{repo}/issues"].get.parameters;
  return Object.fromEntries(params.map((p) => [p.name, { in: p.in, enum: p.schema?.enum, default: p.schema?.default }]));
}
