// about: a page loop beyond the request limit: the error names the limit and how to fetch less
// tool: execute
// config: limits
// error: limit of 3 upstream requests
// error: split the work

async () => {
  const pages = [];
  for (let page = 1; page <= 10; page++) {
    pages.push((await bookshelf.request("GET /books", { per_page: 1 })).data);
  }
  return pages.length;
}
