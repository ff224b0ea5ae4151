// about: crypto.getRandomValues fills a typed array
// tool: execute
// config: bookshelf
// requires: globals
// result: {"length": 16, "allZero": false, "hexLength": 32}

const bytes = crypto.getRandomValues(new Uint8Array(16));
const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
({ length: bytes.length, allZero: bytes.every((b) => b === 0), hexLength: hex.length })
