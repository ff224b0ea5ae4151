// about: a typed portal chain: tickets to people
// tool: execute
// config: portal
// requires: typescript
// result: {"platform": ["Login page times out"], "compilers": ["Add dark mode"]}

type Ticket = { id: number; title: string; assignee: string | null };
type Person = { login: string; team: string };

async () => {
  const { tickets } = (await codemode.helpdesk_list_tickets({ status: "open" })) as { tickets: Ticket[] };
  const byTeam: Record<string, string[]> = {};
  for (const t of tickets.filter((t): t is Ticket & { assignee: string } => t.assignee !== null)) {
    const p = (await codemode.helpdesk_get_person({ login: t.assignee })) as Person;
    (byTeam[p.team] ??= []).push(t.title);
  }
  return byTeam;
}
