// about: every upstream server and its state, from codemode.status()
// tool: search
// config: portal
// result: [["everything", "ready"], ["helpdesk", "ready"], ["memory", "ready"]]

async () => codemode.status().map((s) => [s.server, s.state]).sort()
