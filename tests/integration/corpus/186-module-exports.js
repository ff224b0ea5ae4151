// about: CommonJS module.exports around the function: there are no modules
// tool: execute
// config: bookshelf
// error: module is not defined
// error: no modules

module.exports = async () => (await bookshelf.request("GET /books")).data.total;
