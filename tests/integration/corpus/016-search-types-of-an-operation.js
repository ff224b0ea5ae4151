// about: TypeScript declarations of one operation, to write the call from
// tool: search
// config: bookshelf
// check: "title" in text and "author_id" in text

async () => codemode.types("POST /books")
