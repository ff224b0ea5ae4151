// about: a JSON body from the route form's remaining fields, echoed back
// tool: execute
// config: httpbin
// result: {"json": {"name": "codemode", "tags": ["a", "b"], "nested": {"ok": true}}, "type": "application/json"}

async () => {
  const { data } = await httpbin.request("POST /post", { name: "codemode", tags: ["a", "b"], nested: { ok: true } });
  return { json: data.json, type: data.headers["Content-Type"] };
}
