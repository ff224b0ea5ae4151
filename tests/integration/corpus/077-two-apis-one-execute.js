// about: two clients in one execute: books and issues side by side
// tool: execute
// config: two-apis
// result: {"books": 3, "issues": ["Found a bug"]}

async () => {
  const [books, issues] = await Promise.all([
    bookshelf.request("GET /books"),
    github.request("GET /repos/{owner}/{repo}/issues", { owner: "octocat", repo: "Hello-World" }),
  ]);
  return { books: books.data.total, issues: issues.data.map((i) => i.title) };
}
