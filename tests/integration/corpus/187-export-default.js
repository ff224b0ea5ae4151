// about: an ES module's export default: an error naming `export`
// tool: execute
// config: bookshelf
// error: export

export default async () => {
  return (await bookshelf.request("GET /books")).data.total;
};
