// about: byte length of a UTF-8 body with TextEncoder, and back with TextDecoder
// tool: execute
// config: bookshelf
// requires: globals
// result: {"chars": 5, "bytes": 6, "back": "héllo"}

const text = "héllo";
const bytes = new TextEncoder().encode(text);
({ chars: text.length, bytes: bytes.length, back: new TextDecoder().decode(bytes) })
