// The official TypeScript SDK client against codemode over Streamable HTTP:
// list, search, execute; then resume the session from its id with a new
// transport (no initialize), end it, and see a new client initialise again.
// Usage: MCP_SDK=<node_modules/@modelcontextprotocol/sdk> node http_ts_client.mjs URL [TOKEN]
import { pathToFileURL } from "node:url";

const sdk = process.env.MCP_SDK;
const { Client } = await import(pathToFileURL(`${sdk}/dist/esm/client/index.js`).href);
const { StreamableHTTPClientTransport } = await import(pathToFileURL(`${sdk}/dist/esm/client/streamableHttp.js`).href);

const url = new URL(process.argv[2]);
const token = process.argv[3];
const requestInit = token ? { headers: { Authorization: `Bearer ${token}` } } : undefined;
const text = (r) => r.content.filter((c) => c.type === "text").map((c) => c.text).join("\n");

const out = {};
const client = new Client({ name: "codemode-ts-test", version: "1.0.0" });
const transport = new StreamableHTTPClientTransport(url, { requestInit });
await client.connect(transport);
out.tools = (await client.listTools()).tools.map((t) => t.name);
out.search = text(await client.callTool({ name: "search", arguments: { code: "async () => Object.keys(spec.paths)" } }));
out.execute = text(
  await client.callTool({
    name: "execute",
    arguments: { code: 'async () => (await bookshelf.request("GET /books")).data.books.map(b => b.title)' },
  }),
);
const sessionId = transport.sessionId;

// Session resumption: a new transport carrying the session id skips initialize.
const resumedTransport = new StreamableHTTPClientTransport(url, { requestInit, sessionId });
const resumed = new Client({ name: "codemode-ts-test", version: "1.0.0" });
await resumed.connect(resumedTransport);
const r = await resumed.callTool({ name: "search", arguments: { code: "async () => 1 + 1" } });
out.resumed = resumedTransport.sessionId === sessionId && text(r) === "2";

// End the session; the old id no longer works.
await resumedTransport.terminateSession();
try {
  const t = new StreamableHTTPClientTransport(url, { requestInit, sessionId });
  const c = new Client({ name: "codemode-ts-test", version: "1.0.0" });
  await c.connect(t);
  await c.callTool({ name: "search", arguments: { code: "async () => 1" } });
  out.after_terminate = "ok";
} catch (e) {
  out.after_terminate = `error: ${e.message}`;
}

// Re-initialisation: a fresh client gets a fresh session.
const fresh = new StreamableHTTPClientTransport(url, { requestInit });
const again = new Client({ name: "codemode-ts-test", version: "1.0.0" });
await again.connect(fresh);
out.reinitialised = fresh.sessionId !== undefined && fresh.sessionId !== sessionId;
await fresh.terminateSession();
await again.close();
await client.close();
await resumed.close();
console.log(JSON.stringify(out));
process.exit(0);
