// about: search in TypeScript: a cast on Object.entries and typed callbacks
// tool: search
// config: bookshelf
// requires: typescript
// result: ["listBooks", "createBook", "getBook", "deleteBook", "listAuthors", "getAuthor", "getShelf"]

type Operation = { operationId?: string; summary?: string };

async (): Promise<string[]> => {
  const entries = Object.entries(spec.paths) as [string, Record<string, Operation>][];
  return entries.flatMap(([, ops]) => Object.values(ops).map((op: Operation) => op.operationId ?? "")).filter(Boolean);
}
