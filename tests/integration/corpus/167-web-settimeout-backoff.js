// about: a retry loop with a small setTimeout backoff between attempts (the first attempt rehearsed as a 404)
// tool: execute
// config: bookshelf
// requires: globals
// result: {"attempts": 2, "title": "The Left Hand of Darkness"}

async () => {
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const path = "/books/5f0c7a1e-2d3b-4c5d-8e9f-0a1b2c3d4e5f";
  for (let attempts = 1; ; attempts++) {
    try {
      const headers = attempts === 1 ? { Prefer: "code=404" } : {};
      await bookshelf.request({ path, headers });
      const { data } = await bookshelf.request("GET /books");
      return { attempts, title: data.books[0].title };
    } catch (e) {
      if (attempts >= 3) throw e;
      await sleep(50 * attempts);
    }
  }
}
