// about: the size of the API and its title, in one search
// tool: search
// config: cloudflare
// result: {"title": "Cloudflare API", "version": "4.0.0", "paths": 965, "operations": 1533}

async () => {
  const methods = ["get", "put", "post", "delete", "patch", "head"];
  const operations = Object.values(spec.paths).reduce(
    (n, ops) => n + Object.keys(ops).filter((m) => methods.includes(m)).length,
    0,
  );
  return { title: spec.info.title, version: spec.info.version, paths: Object.keys(spec.paths).length, operations };
}
