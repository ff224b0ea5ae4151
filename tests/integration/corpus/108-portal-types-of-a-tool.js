// about: the TypeScript declaration of a tool, to call it right
// tool: search
// config: portal
// check: "ticket_id" in text and "body" in text and "number" in text

async () => codemode.types("helpdesk_add_comment")
