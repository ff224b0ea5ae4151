// The replacer a result crosses the boundary with (JSON.stringify's second
// argument), so that data in a Map or Set is not lost as `{}`: a Map becomes
// an object when every key is a string or a number (the usual counts and
// lookups), otherwise an array of [key, value] entries; a Set becomes an
// array. Nested ones too: the replacer sees every value. Evaluated as a
// prelude after the code ran, so it sees the code's `Map` and `Set`: code
// that replaces them only changes its own result, which the host parses as
// untrusted JSON text like any other.
(function () {
  'use strict';
  const plainKey = (k) => typeof k === 'string' || typeof k === 'number';
  return function (key, value) {
    if (value === null || typeof value !== 'object') return value;
    if (typeof Map === 'function' && value instanceof Map) {
      const entries = [...value.entries()];
      return entries.every(([k]) => plainKey(k)) ? Object.fromEntries(entries) : entries;
    }
    if (typeof Set === 'function' && value instanceof Set) return [...value.values()];
    return value;
  };
})
