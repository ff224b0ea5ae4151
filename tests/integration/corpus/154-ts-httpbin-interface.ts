// about: an interface for httpbin's /get answer
// tool: execute
// config: httpbin
// requires: typescript
// result: {"lang": "ts", "path": "/get?lang=ts"}

interface HttpbinGet {
  args: Record<string, string>;
  headers: Record<string, string>;
  url: string;
}

async () => {
  const res = await httpbin.request("GET /get", { lang: "ts" });
  const body = res.data as HttpbinGet;
  return { lang: body.args.lang, path: body.url.replace(/^https?:\/\/[^/]+/, "") };
}
