// about: a ```ts fence around typed code
// tool: execute
// config: bookshelf
// requires: typescript
// result: 3

```ts
async (): Promise<number> => {
  const { data } = await bookshelf.request("GET /books");
  const total: number = data.total;
  return total;
}
```
