// about: the answer wrapped in a markdown fence, as chat models often send it
// tool: execute
// config: bookshelf
// result: ["The Left Hand of Darkness", "A Wizard of Earthsea", "Kindred"]

```javascript
async () => {
  const res = await bookshelf.request("GET /books");
  return res.data.books.map((b) => b.title);
}
```
