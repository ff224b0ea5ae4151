// about: a typed top-level await script whose last expression is the result
// tool: execute
// config: cloudflare
// requires: typescript
// result: true

type Envelope<T> = { success: boolean; errors: unknown[]; result: T };
const res = await cloudflare.request("GET /zones");
const body: Envelope<Array<{ id: string }>> = res.data;
body.success && body.result.every((z) => typeof z.id === "string")
