// about: a $ref'd allOf schema reads as plain objects, references already resolved
// tool: search
// config: bookshelf
// result: ["title", "author_id", "id"]

async () => {
  const schema = spec.paths["/books/{book_id}"].get.responses["200"].content["application/json"].schema;
  return schema.allOf.flatMap((part) => part.required ?? []);
}
