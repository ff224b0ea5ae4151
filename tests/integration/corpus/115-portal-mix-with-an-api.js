// about: an MCP tool and an OpenAPI client in the same execute
// tool: execute
// config: portal
// result: {"books": 3, "openTickets": 3}

async () => {
  const [books, open] = await Promise.all([
    bookshelf.request("GET /books"),
    codemode.helpdesk_list_tickets({ status: "open" }),
  ]);
  return { books: books.data.total, openTickets: open.count };
}
