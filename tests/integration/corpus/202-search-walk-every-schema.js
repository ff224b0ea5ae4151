// about: a recursive walk over every component schema for a property name
// tool: search
// config: cloudflare
// check: value["count"] >= 5 and all(p.startswith("#/components/schemas/") for p in value["first"])

async () => {
  const hits = [];
  const walk = (node, path) => {
    if (!node || typeof node !== "object") return;
    if (node.properties?.zone_id) hits.push(path);
    for (const [k, v] of Object.entries(node)) walk(v, `${path}/${k}`);
  };
  walk(spec.components.schemas, "#/components/schemas");
  return { count: hits.length, first: hits.slice(0, 3) };
}
