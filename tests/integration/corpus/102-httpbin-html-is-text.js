// about: a non-JSON body arrives as a string in .data
// tool: execute
// config: httpbin
// result: {"type": "string", "isHtml": true, "contentType": "text/html; charset=utf-8"}

async () => {
  const res = await httpbin.request("GET /html");
  return { type: typeof res.data, isHtml: res.data.trimStart().startsWith("<!DOCTYPE html>"), contentType: res.headers["content-type"] };
}
