// about: a tool that does not exist: the error names the server's tools
// tool: execute
// config: portal
// error: helpdesk_close_ticket
// error: helpdesk_get_ticket

async () => codemode.helpdesk_close_ticket({ id: 101 })
