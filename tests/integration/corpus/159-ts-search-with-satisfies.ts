// about: search code with a typed accumulator and satisfies
// tool: search
// config: github
// requires: typescript
// check: value["get"] > value["delete"] > 0 and set(value) == {"get", "post", "put", "patch", "delete"}

type Counts = Record<"get" | "post" | "put" | "patch" | "delete", number>;

async () => {
  const counts = { get: 0, post: 0, put: 0, patch: 0, delete: 0 } satisfies Counts;
  for (const ops of Object.values(spec.paths) as Record<string, unknown>[]) {
    for (const m of Object.keys(ops) as (keyof Counts)[]) if (m in counts) counts[m]++;
  }
  return counts;
}
