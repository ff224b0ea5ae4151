// about: a busy loop runs into the time limit, and the error says what to do
// tool: execute
// config: limits
// error: time limit of 1 s
// error: split it

async () => {
  let n = 0;
  while (true) {
    n++;
  }
  return n;
}
