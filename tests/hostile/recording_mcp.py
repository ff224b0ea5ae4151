"""A portal MCP server (stdio, newline-delimited JSON-RPC) that records every
`tools/call` it receives, one JSON line per call, in the file named by its
first argument — so a test can tell "refused, nothing sent" from "sent" by
what the server actually got, not by what the code saw. Standard library only.

    python recording_mcp.py CALLS.jsonl
"""

from __future__ import annotations

import json
import sys

ANY = {"type": "object", "additionalProperties": True}
TOOLS = [
    {"name": "read_note", "description": "reads a note", "inputSchema": ANY, "annotations": {"readOnlyHint": True}},
    {"name": "write_note", "description": "writes a note", "inputSchema": ANY},
    {"name": "delete_note", "description": "deletes a note", "inputSchema": ANY},
    {"name": "move_note", "description": "moves a note", "inputSchema": ANY},
    {"name": "Delete_Everything", "description": "deletes every note", "inputSchema": ANY},
    {"name": "admin_reset", "description": "resets the server", "inputSchema": ANY},
]


def main():
    log = sys.argv[1]
    for line in sys.stdin:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if not isinstance(msg, dict) or msg.get("id") is None:
            continue
        m, mid = msg.get("method"), msg["id"]
        if m == "initialize":
            v = (msg.get("params") or {}).get("protocolVersion", "2025-06-18")
            result = {"protocolVersion": v, "capabilities": {"tools": {}}, "serverInfo": {"name": "rec", "version": "1"}}
        elif m == "tools/list":
            result = {"tools": TOOLS}
        elif m == "tools/call":
            p = msg.get("params") or {}
            with open(log, "a") as f:
                f.write(json.dumps({"name": p.get("name"), "arguments": p.get("arguments")}) + "\n")
            result = {"content": [{"type": "text", "text": json.dumps({"called": p.get("name")})}]}
        elif m == "ping":
            result = {}
        else:
            out = {"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "method not found"}}
            sys.stdout.write(json.dumps(out) + "\n")
            sys.stdout.flush()
            continue
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": mid, "result": result}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
