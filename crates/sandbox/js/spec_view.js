// The read-only view of a resolved spec that `search` code sees.
//
// The host builds each spec node once as a frozen object in this (holder)
// realm. References into reference cycles are frozen marker objects; reading
// one yields its target — or `{"$circular": ref}` when the target is already
// on the path being read. Objects with a marker somewhere below them are
// handed out behind a Proxy that carries that path; everything else is handed
// out as the shared frozen object itself, at no cost.
(function () {
  'use strict';
  const needsView = new WeakSet();
  const refIndex = new WeakMap();
  let targets = [];
  let names = [];
  const hasOwn = (o, k) => Object.prototype.hasOwnProperty.call(o, k);

  const view = (v, path) => {
    if (v === null || typeof v !== 'object') return v;
    const r = refIndex.get(v);
    if (r !== undefined) {
      if (path.includes(r)) return Object.freeze({ $circular: names[r] });
      return view(targets[r], path.concat([r]));
    }
    return needsView.has(v) ? proxy(v, path) : v;
  };

  const proxy = (target, path) => {
    const cache = new Map();
    const isArray = Array.isArray(target);
    const child = (k) => {
      if (!cache.has(k)) cache.set(k, view(target[k], path));
      return cache.get(k);
    };
    const readOnly = () => false;
    return new Proxy(isArray ? [] : {}, {
      get: (_, k) => (typeof k === 'string' && hasOwn(target, k) && !(isArray && k === 'length')) ? child(k) : Reflect.get(target, k),
      has: (_, k) => k in target,
      ownKeys: () => Reflect.ownKeys(target),
      getOwnPropertyDescriptor: (_, k) => {
        const d = Reflect.getOwnPropertyDescriptor(target, k);
        if (d === undefined) return undefined;
        if (isArray && k === 'length') return { value: target.length, writable: true, enumerable: false, configurable: false };
        return { value: typeof k === 'string' ? child(k) : d.value, writable: false, enumerable: d.enumerable, configurable: true };
      },
      getPrototypeOf: () => Object.getPrototypeOf(target),
      set: readOnly, defineProperty: readOnly, deleteProperty: readOnly,
      setPrototypeOf: readOnly, preventExtensions: readOnly,
    });
  };

  return {
    marker: (index) => { const m = Object.freeze(Object.create(null)); refIndex.set(m, index); return m; },
    markView: (o) => { needsView.add(o); },
    setTargets: (t, n) => { targets = t; names = n; },
    // A fresh view per call: proxies (and their caches) belong to one call.
    root: (o) => view(o, []),
  };
})
