// The read-only view of resolved specs that `search` code sees, built lazily
// in the call's own runtime: a node becomes a JavaScript object only when the
// code first touches it, and only once per call (so `===` holds between two
// reads of the same node).
//
// `shape(s, id)` (a host function over the packed graph of spec `s`)
// describes one node:
//   object: [0, key, tag, value, key, tag, value, ...]
//   array:  [1, tag, value, tag, value, ...]
// where tag 0 means `value` is the child itself (a string, number, boolean or
// null); tag 1 that it is the id of an object/array node with no reference
// below it, tag 3 the same with a reference somewhere below (its reading
// depends on the path); and tag 2 that it is a reference into a reference
// cycle (read as its target, or as `{"$circular": ref}` when that target is
// already on the path being read). `target(s, r)` gives a reference's
// [node id, tag of the target (1 or 3), reference text]. Tag 4 is a long
// string, read with `text(s, id)` on first touch. A key is the id of a
// string the call already holds, or — the first time — its text followed by
// its id.
//
// Objects are frozen; object children that are objects or arrays are
// getters, so a walk costs what it touches. Array elements are built with
// the array. Evaluated as a prelude; returns `install(list, single)`, which
// defines `specs` (a getter per spec: a spec never read costs nothing) and,
// when `single`, `spec`. `list` holds `[name, rootId, dependent, schema]` per
// spec; a GraphQL schema's view (`schema` true) goes to `schemas` (and
// `schema`) instead.
(function (shape, target, text) {
  'use strict';
  // A node with no reference below it reads the same on every path: one
  // object per node id. Others are kept per (node, path).
  const byId = [];
  const byPath = Object.create(null);
  const keys = [];
  const defineProperty = Object.defineProperty;
  const freeze = Object.freeze;
  // One descriptor object, re-used for every accessor: defineProperty only
  // reads it.
  const lazy = { get: undefined, enumerable: true, configurable: true };

  const node = (s, id, dependent, path) => {
    let memo, key;
    if (dependent) {
      memo = byPath;
      key = `${s}:${id}:${path.join(',')}`;
    } else {
      memo = byId[s] || (byId[s] = Object.create(null));
      key = id;
    }
    const known = memo[key];
    if (known !== undefined) return known;
    const d = shape(s, id);
    let out;
    if (d[0] === 1) {
      out = [];
      for (let i = 1, at = 0; i < d.length; i += 2, at++) {
        const t = d[i], v = d[i + 1];
        if (t === 0) out.push(v);
        else {
          lazy.get = () => child(s, t, v, path);
          defineProperty(out, at, lazy);
        }
      }
    } else {
      out = {};
      const known = keys[s] || (keys[s] = Object.create(null));
      for (let i = 1; i < d.length; i += 3) {
        let k = d[i];
        if (typeof k === 'string') known[d[++i]] = k;
        else k = known[k];
        const t = d[i + 1], v = d[i + 2];
        if (t === 0 && k !== '__proto__') out[k] = v;
        else if (t === 0) defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
        else {
          lazy.get = () => child(s, t, v, path);
          defineProperty(out, k, lazy);
        }
      }
    }
    freeze(out);
    memo[key] = out;
    return out;
  };

  const child = (s, t, v, path) => {
    if (t === 0) return v;
    if (t === 4) return text(s, v);
    if (t !== 2) return node(s, v, t === 3, path);
    const [id, tag, ref] = target(s, v);
    if (path.includes(v)) return freeze({ $circular: ref });
    return tag === 0 ? id : node(s, id, tag === 3, path.concat([v]));
  };

  return (list, single) => {
    const specs = {};
    const schemas = {};
    list.forEach(([name, rootId, dependent, schema], s) => {
      const get = () => node(s, rootId, dependent, []);
      defineProperty(schema ? schemas : specs, name, { get, enumerable: true, configurable: false });
      if (single) defineProperty(globalThis, schema ? 'schema' : 'spec', { get, enumerable: true, configurable: false });
    });
    defineProperty(globalThis, 'specs', { value: freeze(specs), enumerable: true, writable: false, configurable: false });
    if (list.some((e) => e[3])) {
      defineProperty(globalThis, 'schemas', { value: freeze(schemas), enumerable: true, writable: false, configurable: false });
    }
  };
})
