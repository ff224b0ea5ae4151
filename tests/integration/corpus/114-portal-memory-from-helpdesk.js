// about: chaining two servers: people from the helpdesk into the memory graph, then read back
// tool: execute
// config: portal
// result: ["Ada Lovelace:person:platform", "Grace Hopper:person:compilers"]

async () => {
  const people = await Promise.all(["ada", "grace"].map((login) => codemode.helpdesk_get_person({ login })));
  await codemode.memory_create_entities({
    entities: people.map((p) => ({ name: p.name, entityType: "person", observations: [`team:${p.team}`] })),
  });
  const graph = await codemode.memory_read_graph({});
  return graph.entities
    .filter((e) => e.entityType === "person")
    .map((e) => `${e.name}:${e.entityType}:${e.observations[0].slice(5)}`)
    .sort();
}
