// about: what creating a DNS record takes: the body is a oneOf of record kinds, each resolved
// tool: search
// config: cloudflare
// check: value["kinds"] >= 10 and value["a"]["required"] == ["type", "name", "content"] and "content" in value["a"]["props"]

async () => {
  const body = spec.paths["/zones/{zone_id}/dns_records"].post.requestBody.content["application/json"].schema;
  const a = body.oneOf.find((s) => s.title === "A Record");
  const props = a.allOf.flatMap((part) => Object.keys(part.properties ?? {}));
  return { kinds: body.oneOf.length, a: { required: a.required, props } };
}
