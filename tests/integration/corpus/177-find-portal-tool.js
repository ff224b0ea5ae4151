// about: find over MCP tools: the name is the tool's codemode name
// tool: search
// config: portal
// requires: find
// check: "helpdesk_add_comment" in [e["name"] for e in value]

async () => (await codemode.find("add a comment to a ticket", { limit: 5 })).map((e) => ({ name: e.name, api: e.api }))
