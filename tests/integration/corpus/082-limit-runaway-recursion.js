// about: recursion without a base case ends on the stack limit
// tool: execute
// config: limits
// error: stack

async () => {
  const depth = (n) => depth(n + 1) + 1;
  return depth(0);
}
