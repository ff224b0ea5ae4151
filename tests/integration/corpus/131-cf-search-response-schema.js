// about: what a list returns: the result item's properties, through allOf and $ref
// tool: search
// config: cloudflare
// check: isinstance(value, list) and "name" in value and "id" in value

async () => {
  const schema = spec.paths["/zones"].get.responses["200"].content["application/json"].schema;
  const collect = (s, out = new Set()) => {
    if (!s || typeof s !== "object") return out;
    Object.keys(s.properties ?? {}).forEach((k) => out.add(k));
    (s.allOf ?? []).forEach((p) => collect(p, out));
    return out;
  };
  const top = [...collect(schema)];
  const result = (schema.allOf ?? [schema]).map((p) => p.properties?.result).find(Boolean);
  return [...collect(result?.items)].sort().concat(top.includes("result") ? [] : ["<no result>"]);
}
