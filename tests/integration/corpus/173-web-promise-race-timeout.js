// about: Promise.race of a request against a setTimeout deadline of the code's own
// tool: execute
// config: bookshelf
// requires: globals
// result: 200

async () => {
  const timeout = (ms) => new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms));
  const res = await Promise.race([bookshelf.request("GET /books"), timeout(2000)]);
  return res.status;
}
