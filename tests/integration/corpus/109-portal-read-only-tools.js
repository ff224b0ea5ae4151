// about: which tools only read, from their annotations
// tool: search
// config: portal
// check: {"helpdesk_get_ticket", "helpdesk_list_tickets", "everything_echo"} <= set(value) and "helpdesk_add_comment" not in value

async () => codemode.tools().filter((t) => t.annotations?.readOnlyHint).map((t) => t.name)
