// about: a write tool, then reading back what it changed
// tool: execute
// config: portal
// result: {"added": {"ticket_id": 102, "comments": 1}, "last": {"author": "agent", "body": "Triaged: low priority, next sprint."}}

async () => {
  const added = await codemode.helpdesk_add_comment({ ticket_id: 102, body: "Triaged: low priority, next sprint." });
  const ticket = await codemode.helpdesk_get_ticket({ id: 102 });
  return { added, last: ticket.comments.at(-1) };
}
