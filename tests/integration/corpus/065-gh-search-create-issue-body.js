// about: the body of creating an issue: required fields and the property names
// tool: search
// config: github
// check: value["required"] == ["title"] and {"title", "body", "labels", "assignees"} <= set(value["props"])

async () => {
  const schema = spec.paths["/repos/{owner}/{repo}/issues"].post.requestBody.content["application/json"].schema;
  return { required: schema.required, props: Object.keys(schema.properties) };
}
