// about: a chain: open bug tickets -> each ticket -> its assignee's name
// tool: execute
// config: portal
// result: [{"ticket": 101, "title": "Login page times out", "assignee": "Ada Lovelace", "comments": 1}]

async () => {
  const { tickets } = await codemode.helpdesk_list_tickets({ status: "open", label: "bug" });
  const out = [];
  for (const t of tickets) {
    const full = await codemode.helpdesk_get_ticket({ id: t.id });
    const person = full.assignee ? await codemode.helpdesk_get_person({ login: full.assignee }) : null;
    out.push({ ticket: t.id, title: full.title, assignee: person?.name ?? "nobody", comments: full.comments.length });
  }
  return out;
}
