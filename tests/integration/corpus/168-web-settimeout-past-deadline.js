// about: a timer longer than the time limit ends the call at the limit
// tool: execute
// config: limits
// requires: globals
// error: time limit

async () => {
  await new Promise((resolve) => setTimeout(resolve, 5000));
  return "woke up";
}
