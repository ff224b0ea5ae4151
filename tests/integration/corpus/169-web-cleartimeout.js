// about: a cleared timer never fires
// tool: execute
// config: bookshelf
// requires: globals
// result: {"fired": ["kept"]}

async () => {
  const fired = [];
  const cancelled = setTimeout(() => fired.push("cancelled"), 10);
  setTimeout(() => fired.push("kept"), 20);
  clearTimeout(cancelled);
  await new Promise((resolve) => setTimeout(resolve, 40));
  return { fired };
}
