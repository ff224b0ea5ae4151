// about: a custom header goes out and httpbin echoes it; the credential comes back scrubbed
// tool: execute
// config: httpbin
// absent: corpus-httpbin-token-0123456789
// result: {"requestId": "corpus-093", "authorization": "Bearer [REDACTED]"}

async () => {
  const { data } = await httpbin.request({ path: "/headers", headers: { "X-Correlation-Id": "corpus-093" } });
  return { requestId: data.headers["X-Correlation-Id"], authorization: data.headers.Authorization };
}
