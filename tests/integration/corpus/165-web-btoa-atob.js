// about: base64 with btoa/atob (QuickJS has them), checked against httpbin's decoder
// tool: execute
// config: httpbin
// result: {"sent": "aGVsbG8gY29kZW1vZGU=", "decoded": "hello codemode"}

async () => {
  const encoded = btoa("hello codemode");
  const { data } = await httpbin.request("GET /base64/{value}", { value: encoded });
  return { sent: encoded, decoded: atob(encoded) === data ? data : `mismatch: ${data}` };
}
