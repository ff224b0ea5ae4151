// about: a recursive schema: the child shelf points back as $circular, once
// tool: search
// config: bookshelf
// check: value["childKeys"] == ["$circular"] and value["circular"].endswith("Shelf") and value["ownProps"] == ["id", "name", "books", "children"]

async () => {
  const shelf = spec.paths["/shelves/{shelf_id}"].get.responses["200"].content["application/json"].schema;
  const child = shelf.properties.children.items;
  return { ownProps: Object.keys(shelf.properties), childKeys: Object.keys(child), circular: child.$circular };
}
