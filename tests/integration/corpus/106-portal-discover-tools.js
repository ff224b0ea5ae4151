// about: search discovers the upstream tools of one server with codemode.tools()
// tool: search
// config: portal
// result: ["helpdesk_add_comment", "helpdesk_get_person", "helpdesk_get_ticket", "helpdesk_list_tickets"]

async () =>
  codemode
    .tools()
    .filter((t) => t.server === "helpdesk")
    .map((t) => t.name)
    .sort()
