// about: the workers of two known accounts, sequentially with for...of
// tool: execute
// config: cloudflare
// check: isinstance(value, dict) and len(value) == 2 and all(isinstance(v, list) for v in value.values())

async () => {
  const accounts = ["023e105f4ecef8ad9ca31a8372d0c353", "01a7362d577a6c3019a474fd6f485823"];
  const out = {};
  for (const account_id of accounts) {
    const scripts = await cloudflare.request("GET /accounts/{account_id}/workers/scripts", { account_id });
    out[account_id] = scripts.result.map((s) => s.id);
  }
  return out;
}
