// Synchronous host functions for `search` code: `codemode.find(query, options?)`,
// `codemode.tools()`, `codemode.status()` and `codemode.types(name?)`. Arguments and results cross as JSON text.
// Evaluated as a prelude; returns a factory taking the host function.
(function (call) {
  'use strict';
  const invoke = (method, args) => {
    const reply = call(method, JSON.stringify(args));
    const v = JSON.parse(reply.slice(1));
    if (reply[0] === '1') return v;
    const err = new Error(v !== null && typeof v === 'object' && typeof v.message === 'string' ? v.message : String(v));
    if (v !== null && typeof v === 'object') for (const k of Object.keys(v)) if (k !== 'message') err[k] = v[k];
    throw err;
  };
  return Object.freeze({
    find: (query, options) => invoke('find', options === undefined ? [query] : [query, options]),
    tools: () => invoke('tools', []),
    status: () => invoke('status', []),
    types: (name) => invoke('types', name === undefined ? [] : [name]),
  });
})
