// about: server-everything's tools with dashes in their names, called by their codemode names
// tool: execute
// config: portal
// check: "5" in json.dumps(value["sum"]) and "hello corpus" in json.dumps(value["echo"])

async () => {
  const sum = await codemode.everything_get_sum({ a: 2, b: 3 });
  const echo = await codemode.everything_echo({ message: "hello corpus" });
  return { sum, echo };
}
