// about: an ES module's export default: the error says what shape the code must have
// tool: execute
// config: bookshelf
// error: export
// error: async arrow function such as `async () => { ... }`

export default async () => {
  return (await bookshelf.request("GET /books")).data.total;
};
