// about: crypto.randomUUID for an idempotency key in a write
// tool: execute
// config: httpbin
// requires: globals
// check: re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", value["key"]) and value["echoed"] == value["key"]

async () => {
  const key = crypto.randomUUID();
  const { data } = await httpbin.request({ method: "POST", path: "/post", headers: { "Idempotency-Key": key }, body: { ok: true } });
  return { key, echoed: data.headers["Idempotency-Key"] };
}
