// about: tool calls in Promise.all run in parallel
// tool: execute
// config: portal
// result: {"101": "high", "102": "low", "103": "high", "104": "medium"}

async () => {
  const ids = [101, 102, 103, 104];
  const tickets = await Promise.all(ids.map((id) => codemode.helpdesk_get_ticket({ id })));
  return Object.fromEntries(tickets.map((t) => [t.id, t.priority]));
}
