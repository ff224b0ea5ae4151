// about: `declare const` for the client, as models write to please a type checker
// tool: execute
// config: bookshelf
// requires: typescript
// result: 3

declare const bookshelf: { request(route: string, params?: object): Promise<{ status: number; data: any }> };

const res = await bookshelf.request("GET /books");
res.data.total
