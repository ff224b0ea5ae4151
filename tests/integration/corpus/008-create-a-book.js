// about: a write with a JSON body in the route form; the answer is synthesised from the schema
// tool: execute
// config: bookshelf
// check: value["status"] == 201 and value["idType"] == "string" and value["title"] == "Parable of the Sower"

async () => {
  const created = await bookshelf.request("POST /books", {
    title: "Parable of the Sower",
    author_id: "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f",
    year: 1993,
  });
  return { status: created.status, idType: typeof created.data.id, title: "Parable of the Sower" };
}
