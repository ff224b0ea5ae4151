// about: every entry is compact: name, api and summary as strings
// tool: search
// config: bookshelf
// requires: find
// check: len(value) >= 1 and all(isinstance(e.get("name"), str) and e.get("api") == "bookshelf" and isinstance(e.get("summary"), str) for e in value) and value[0]["name"] == "GET /authors"

async () => await codemode.find("list authors")
