// setTimeout/setInterval/clearTimeout/clearInterval for model code. The
// queue is the host's (`add`, `again`, `clear`; the call's event loop fires
// due timers through `fire`); the callbacks stay here, keyed by id. A
// string "callback" is refused: no code is ever evaluated from a string.
// Evaluated as a prelude; returns {globals, fire}.
(function (add, again, clear) {
  'use strict';
  const apply = Reflect.apply;
  const freeze = Object.freeze;
  // No prototype in the table: nothing the code does to Object.prototype
  // or Map.prototype changes which callback an id runs.
  const table = Object.create(null);
  const callback = (name, fn) => {
    if (typeof fn !== 'function') {
      throw new TypeError(`${name}(callback, ms, ...args) needs a function as its callback (strings of code are not run), e.g. ${name}(() => done(), 100)`);
    }
    return fn;
  };
  // Methods, so that none has a `prototype` (nothing to construct, or to
  // tamper with). Delays are ToNumber'd here, clamped by the host.
  const globals = {
    setTimeout(fn, ms = 0, ...args) {
      callback('setTimeout', fn);
      const delay = +ms;
      const id = add(delay, false);
      table[id] = { fn, args, every: -1 };
      return id;
    },
    setInterval(fn, ms = 0, ...args) {
      callback('setInterval', fn);
      const delay = +ms;
      const id = add(delay, true);
      table[id] = { fn, args, every: delay };
      return id;
    },
    // One table for both, as in browsers: the ids share one space.
    clearTimeout(id) { clearTimer(id); },
    clearInterval(id) { clearTimer(id); },
  };
  const clearTimer = (id) => {
    const key = +id;
    if (table[key] === undefined) return;
    delete table[key];
    clear(key);
  };
  const fire = (id) => {
    const t = table[id];
    if (t === undefined) return;
    if (t.every >= 0) again(id, t.every);
    else delete table[id];
    apply(t.fn, undefined, t.args);
  };
  return {
    globals: freeze(Object.fromEntries(Object.entries(globals).map(([k, f]) => [k, freeze(f)]))),
    fire,
  };
})
