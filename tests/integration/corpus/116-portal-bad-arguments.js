// about: arguments that do not fit the tool's schema are refused before sending, naming the field
// tool: execute
// config: portal
// error: id

async () => codemode.helpdesk_get_ticket({ id: "one-oh-one" })
