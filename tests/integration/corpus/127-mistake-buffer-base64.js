// about: Node's Buffer for base64: named as missing
// tool: execute
// config: bookshelf
// error: Buffer is not defined

async () => Buffer.from("user:secret").toString("base64")
