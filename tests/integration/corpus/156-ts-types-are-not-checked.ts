// about: types are stripped, not checked: a wrong annotation still runs
// tool: execute
// config: bookshelf
// requires: typescript
// result: "not a number"

const n: number = "not a number" as any as number;
const s: string = `${n}`;
s
