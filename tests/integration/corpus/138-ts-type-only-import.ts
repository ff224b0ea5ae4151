// about: a type-only import, gone once types are stripped
// tool: execute
// config: cloudflare
// requires: typescript
// check: isinstance(value, list) and len(value) >= 1 and all(isinstance(n, str) for n in value)

import type { Zone } from "cloudflare/resources/zones";

async () => {
  const response = await cloudflare.request("GET /zones", { per_page: 5 });
  const zones: Zone[] = response.result;
  return zones.map((z: Zone) => z.name);
}
