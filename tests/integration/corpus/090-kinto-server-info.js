// about: the root endpoint: project name and the capabilities the server has
// tool: execute
// config: kinto
// absent: s3cret-admin-pw
// check: value["project"] == "kinto" and "accounts" in value["capabilities"] and value["user"] == "account:admin"

async () => {
  const { data } = await kinto.request("GET /");
  return { project: data.project_name, capabilities: Object.keys(data.capabilities ?? {}), user: data.user?.id };
}
