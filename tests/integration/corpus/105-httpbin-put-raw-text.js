// about: a raw form body with its content type: httpbin parses it as a form
// tool: execute
// config: httpbin
// result: {"data": "", "form": {"kind": "test", "name": "codemode"}}

async () => {
  const { data } = await httpbin.request({
    method: "PUT",
    path: "/put",
    rawBody: "name=codemode&kind=test",
    contentType: "application/x-www-form-urlencoded",
  });
  return { data: data.data, form: data.form };
}
