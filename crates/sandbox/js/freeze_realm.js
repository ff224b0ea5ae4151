// Freezes every object reachable from this realm's global object: its
// intrinsics, their prototypes, getters and setters. Run once in the realm
// that owns the shared spec, after the spec is built and before any model
// code can reach it.
(() => {
  'use strict';
  const seen = new Set();
  const todo = [globalThis];
  while (todo.length > 0) {
    const o = todo.pop();
    if (o === null || (typeof o !== 'object' && typeof o !== 'function') || seen.has(o)) continue;
    seen.add(o);
    Object.freeze(o);
    for (const k of Reflect.ownKeys(o)) {
      const d = Reflect.getOwnPropertyDescriptor(o, k);
      if (d !== undefined) todo.push(d.value, d.get, d.set);
    }
    todo.push(Object.getPrototypeOf(o));
  }
})();
