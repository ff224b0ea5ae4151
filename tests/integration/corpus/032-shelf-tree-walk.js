// about: a recursive walk over a synthesised nested body (deterministic for the same request)
// tool: execute
// config: bookshelf

async () => {
  const { data: shelf } = await bookshelf.request("GET /shelves/{shelf_id}", { shelf_id: 7 });
  const names = [];
  const walk = (s) => {
    names.push(s.name);
    (s.children ?? []).forEach(walk);
  };
  walk(shelf);
  return { count: names.length, names };
}
