// about: every $ref is resolved: no "$ref" anywhere in an operation
// tool: search
// config: cloudflare
// result: {"refs": false, "summary": "List Zones", "operationId": "zones-get"}

async () => {
  const op = spec.paths["/zones"].get;
  return { refs: JSON.stringify(op).includes('"$ref"'), summary: op.summary, operationId: op.operationId };
}
