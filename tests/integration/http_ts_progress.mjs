// The official TypeScript SDK client's `onprogress` against codemode over
// Streamable HTTP: calls execute with CODE (from the environment) and prints
// every progress notification (with the time it arrived, ms after the call
// started) and the result, as one JSON line.
// Usage: MCP_SDK=<node_modules/@modelcontextprotocol/sdk> CODE=... node http_ts_progress.mjs URL
import { pathToFileURL } from "node:url";

const sdk = process.env.MCP_SDK;
const { Client } = await import(pathToFileURL(`${sdk}/dist/esm/client/index.js`).href);
const { StreamableHTTPClientTransport } = await import(pathToFileURL(`${sdk}/dist/esm/client/streamableHttp.js`).href);

const client = new Client({ name: "codemode-ts-progress", version: "1.0.0" });
await client.connect(new StreamableHTTPClientTransport(new URL(process.argv[2])));
const events = [];
const started = Date.now();
const result = await client.callTool({ name: "execute", arguments: { code: process.env.CODE } }, undefined, {
  onprogress: (p) => events.push({ at: Date.now() - started, progress: p.progress, total: p.total, message: p.message }),
  timeout: 60000,
});
const elapsed = Date.now() - started;
const text = result.content.filter((c) => c.type === "text").map((c) => c.text).join("\n");
await client.close();
console.log(JSON.stringify({ events, elapsed, text, isError: result.isError === true }));
process.exit(0);
