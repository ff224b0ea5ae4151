// about: progress(message, fraction) between pages, as a long job reports itself
// tool: execute
// config: bookshelf
// result: {"reported": "boolean", "pages": 3}

async () => {
  let reported;
  const pages = [];
  for (let page = 1; page <= 3; page++) {
    pages.push((await bookshelf.request("GET /books", { per_page: 1 })).data.books.length);
    const r = progress(`page ${page} of 3`, page / 3);
    reported ??= typeof r;
  }
  return { reported, pages: pages.length };
}
