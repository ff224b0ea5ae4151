// about: a numeric enum used as an index and a reverse lookup
// tool: execute
// config: bookshelf
// requires: typescript
// result: {"rank": 2, "name": "High"}

enum Priority {
  Low,
  Medium,
  High,
}

const p: Priority = Priority.High;
return { rank: p, name: Priority[p] };
