// The bridge between model code and host functions. `send` (a host function)
// starts an asynchronous host call and returns its id; the host later calls
// `complete(id, ok, json)`. Everything crosses as JSON text, parsed and
// checked on the host side. Evaluated as a prelude; returns the bridge.
(function (send) {
  'use strict';
  const pending = new Map();
  const toError = (e) => {
    const err = new Error(e !== null && typeof e === 'object' && typeof e.message === 'string' ? e.message : String(e));
    if (e !== null && typeof e === 'object') {
      for (const k of Object.keys(e)) if (k !== 'message' && k !== 'stack') err[k] = e[k];
    }
    return err;
  };
  const call = (client, method, args) => new Promise((resolve, reject) => {
    let payload;
    try {
      payload = JSON.stringify(args);
    } catch (e) {
      throw new TypeError(`the arguments of ${client}.${method}() must be JSON-serialisable: ${e.message}`);
    }
    const id = send(client, method, payload === undefined ? '[]' : payload);
    pending.set(id, { resolve, reject });
  });
  return {
    complete: (id, ok, json) => {
      const p = pending.get(id);
      if (p === undefined) return;
      pending.delete(id);
      const v = JSON.parse(json);
      if (ok) p.resolve(v); else p.reject(toError(v));
    },
    client: (name, methods) => Object.freeze(Object.fromEntries(
      methods.map((m) => [m, (...args) => call(name, m, args)]))),
    // A client whose methods are not known in advance (portal tools): any
    // property is a method; the host says when a name does not exist.
    dynamic: (name) => new Proxy(Object.freeze({}), {
      get: (_, m) => (typeof m === 'string' && m !== 'then') ? (...args) => call(name, m, args) : undefined,
    }),
  };
})
