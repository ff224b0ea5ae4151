"""A small helpdesk as an upstream MCP server (stdio), built with the official
Python SDK's `MCPServer`, for the portal snippets of the corpus: tickets,
their comments and the people on them — data to chain one tool into another.
Comments added live in memory for the life of the process.

    python helpdesk_mcp.py
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

server = MCPServer("helpdesk")
READ = ToolAnnotations(readOnlyHint=True)

PEOPLE = {
    "ada": {"login": "ada", "name": "Ada Lovelace", "email": "ada@example.com", "team": "platform"},
    "grace": {"login": "grace", "name": "Grace Hopper", "email": "grace@example.com", "team": "compilers"},
    "linus": {"login": "linus", "name": "Linus Torvalds", "email": "linus@example.com", "team": "platform"},
}
TICKETS = [
    {"id": 101, "title": "Login page times out", "status": "open", "priority": "high", "assignee": "ada", "labels": ["auth", "bug"]},
    {"id": 102, "title": "Add dark mode", "status": "open", "priority": "low", "assignee": "grace", "labels": ["ui"]},
    {"id": 103, "title": "Billing export is empty", "status": "closed", "priority": "high", "assignee": "linus", "labels": ["billing", "bug"]},
    {"id": 104, "title": "Rotate API keys", "status": "open", "priority": "medium", "assignee": None, "labels": ["security"]},
]
COMMENTS: dict[int, list[dict]] = {101: [{"author": "grace", "body": "Seen on Safari only."}], 103: [{"author": "ada", "body": "Fixed in 2.3."}]}


def ticket(ticket_id: int) -> dict:
    for t in TICKETS:
        if t["id"] == ticket_id:
            return t
    raise ToolError(f"no ticket {ticket_id}; ids are {[t['id'] for t in TICKETS]}")


@server.tool(annotations=READ)
def list_tickets(status: str = "open", label: str | None = None) -> dict:
    """Tickets with this status ("open", "closed" or "all"), optionally only those with a label."""
    found = [t for t in TICKETS if status == "all" or t["status"] == status]
    if label is not None:
        found = [t for t in found if label in t["labels"]]
    return {"tickets": found, "count": len(found)}


@server.tool(annotations=READ)
def get_ticket(id: int) -> dict:  # noqa: A002 - the name models use
    """One ticket with its comments."""
    return {**ticket(id), "comments": COMMENTS.get(id, [])}


@server.tool(annotations=READ)
def get_person(login: str) -> dict:
    """A person by login: name, email, team."""
    if login not in PEOPLE:
        raise ToolError(f"no person {login!r}")
    return PEOPLE[login]


@server.tool()
def add_comment(ticket_id: int, body: str, author: str = "agent") -> dict:
    """Adds a comment to a ticket; returns the ticket id and how many comments it has now."""
    ticket(ticket_id)
    COMMENTS.setdefault(ticket_id, []).append({"author": author, "body": body})
    return {"ticket_id": ticket_id, "comments": len(COMMENTS[ticket_id])}


if __name__ == "__main__":
    server.run("stdio")
