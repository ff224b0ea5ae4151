// The official TypeScript SDK v2 client (@modelcontextprotocol/client, which
// speaks 2026-07-28) against codemode, pinned to 2026-07-28: list, search,
// execute, and an execute whose POST needs an approval — answered by the
// client's `elicitation/create` handler through an `input_required` round.
// Prints one JSON line.
// Usage: MCP_CLIENT2=<node_modules/@modelcontextprotocol/client> node ts2_client.mjs (URL | -- COMMAND ARGS...)
import { pathToFileURL } from "node:url";

const pkg = process.env.MCP_CLIENT2;
const { Client, StreamableHTTPClientTransport } = await import(pathToFileURL(`${pkg}/dist/index.mjs`).href);
const { StdioClientTransport } = await import(pathToFileURL(`${pkg}/dist/stdio.mjs`).href);

const args = process.argv.slice(2);
const transport = args[0] === "--"
  ? new StdioClientTransport({ command: args[1], args: args.slice(2), env: { PATH: process.env.PATH, CODEMODE_LOG: "warn" } })
  : new StreamableHTTPClientTransport(new URL(args[0]));
const client = new Client(
  { name: "codemode-ts2-test", version: "1.0.0" },
  { capabilities: { elicitation: {} }, versionNegotiation: { mode: { pin: "2026-07-28" } } },
);
const asked = [];
client.setRequestHandler("elicitation/create", async (request) => {
  asked.push(request.params.message);
  return { action: "accept", content: {} };
});
await client.connect(transport);
const text = (r) => r.content.filter((c) => c.type === "text").map((c) => c.text).join("\n");
const out = { protocol: client.getNegotiatedProtocolVersion?.() ?? null };
out.tools = (await client.listTools()).tools.map((t) => t.name);
out.search = text(await client.callTool({ name: "search", arguments: { code: "async () => Object.keys(spec.paths)" } }));
out.execute = text(await client.callTool({ name: "execute", arguments: { code: 'async () => (await bookshelf.request("GET /books")).status' } }));
out.approved = text(await client.callTool({
  name: "execute",
  arguments: { code: "async () => (await bookshelf.request('POST /books', {title: 'Dune', author_id: '9b2e4f60-1c1d-4e2f-a3b4-c5d6e7f80912'})).status" },
}));
out.asked = asked;
await client.close();
console.log(JSON.stringify(out));
process.exit(0);
