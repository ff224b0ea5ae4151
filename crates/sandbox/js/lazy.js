// The web-standard globals are built on first touch, group by group: a
// call that never uses URL pays nothing for it. Each name starts as an
// accessor on globalThis (non-enumerable, configurable, like a browser's
// globals); touching, assigning or shadowing one builds its group through
// `load(group, atob, btoa)` (a host function that evaluates the group's
// prelude — QuickJS's own atob/btoa go along for the encoding group) and
// turns every name of the group that is still ours into a plain writable
// property. Evaluated as a prelude; returns nothing.
(function (load) {
  'use strict';
  const defineProperty = Object.defineProperty;
  const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
  const plain = (value) => ({ value, writable: true, enumerable: false, configurable: true });
  const atob = globalThis.atob, btoa = globalThis.btoa;
  const GROUPS = [
    ['url', ['URL', 'URLSearchParams']],
    ['encoding', ['TextEncoder', 'TextDecoder', 'atob', 'btoa']],
    ['crypto', ['crypto']],
    ['clone', ['structuredClone']],
  ];
  for (const [group, names] of GROUPS) {
    let built = null;
    const getters = Object.create(null);
    const build = () => {
      if (built === null) {
        built = load(group, atob, btoa);
        for (const n of names) {
          // A name the code deleted or redefined meanwhile stays as it made it.
          if (getOwnPropertyDescriptor(globalThis, n)?.get === getters[n]) defineProperty(globalThis, n, plain(built[n]));
        }
      }
      return built;
    };
    for (const n of names) {
      const accessor = {
        get() { return build()[n]; },
        set(v) { build(); defineProperty(globalThis, n, plain(v)); },
      };
      getters[n] = accessor.get;
      defineProperty(globalThis, n, { get: accessor.get, set: accessor.set, enumerable: false, configurable: true });
    }
  }
})
