// about: the declarations of every upstream tool at once
// tool: search
// config: portal
// check: "helpdesk_get_ticket" in text and "everything_echo" in text and "memory_create_entities" in text

async () => codemode.types()
