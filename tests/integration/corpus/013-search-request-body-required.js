// about: what a create call must send: the requestBody schema's required list and properties
// tool: search
// config: bookshelf
// result: {"required": ["title", "author_id"], "properties": ["title", "author_id", "genre", "year"]}

async () => {
  const schema = spec.paths["/books"].post.requestBody.content["application/json"].schema;
  return { required: schema.required, properties: Object.keys(schema.properties) };
}
