// structuredClone for model code (the HTML structured clone algorithm, for
// what model code holds): primitives, plain objects, arrays, Date, RegExp,
// Map, Set, ArrayBuffer, typed arrays and DataView, Error, and the
// primitive wrappers; cycles and shared references keep their shape.
// Functions, symbols, promises, weak collections throw a DataCloneError.
// Iterative (a work list, no recursion), so depth costs memory — bounded by
// the call's limit — never stack. Getters run as the standard says (each
// own enumerable property is read once), inside the call's limits; nothing
// here calls the host. Evaluated as a prelude; returns the globals.
(function () {
  'use strict';
  const freeze = Object.freeze;
  const keys = Object.keys;
  const defineProperty = Object.defineProperty;
  const isArray = Array.isArray;
  const isView = ArrayBuffer.isView;
  const TYPED = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
    Float32Array, Float64Array, BigInt64Array, BigUint64Array];
  if (typeof Float16Array === 'function') TYPED.push(Float16Array);
  const ERRORS = { Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError };
  const HOW = 'clone plain data (objects, arrays, Date, RegExp, Map, Set, typed arrays); leave out or convert what is not, e.g. structuredClone({ ...value, callback: undefined })';

  const PROPS = 0, MAP = 1, SET = 2;
  const refuse = (what) => {
    throw new DOMException(`structuredClone: ${what} cannot be cloned; ${HOW}`, 'DataCloneError');
  };
  const field = (target, k, v) => defineProperty(target, k, { value: v, writable: true, enumerable: true, configurable: true });

  // A method, so that it has no `prototype`.
  const { structuredClone } = { structuredClone(value, options = undefined) {
    if (arguments.length === 0) throw new TypeError('structuredClone(value): 1 argument required, but only 0 present');
    const transfer = options?.transfer;
    if (transfer !== undefined && [...transfer].length > 0) {
      refuse('a transfer list (transferring buffers)');
    }
    const seen = new Map();
    // Copies whose contents are still to be filled in, flat: source, copy,
    // kind (one array for all, not one per object).
    const work = [];
    const copy = (v) => {
      if (typeof v === 'symbol') refuse('a Symbol');
      if (typeof v === 'function') refuse(`a function (${v.name ? `\`${v.name}\`` : 'anonymous'})`);
      if (v === null || typeof v !== 'object') return v;
      const known = seen.get(v);
      if (known !== undefined) return known;
      let out;
      if (isArray(v)) {
        out = new Array(v.length);
        work.push(v, out, PROPS);
      } else if (v instanceof Date) {
        out = new Date(v.getTime());
      } else if (v instanceof RegExp) {
        out = new RegExp(v.source, v.flags);
      } else if (v instanceof Map) {
        out = new Map();
        work.push(v, out, MAP);
      } else if (v instanceof Set) {
        out = new Set();
        work.push(v, out, SET);
      } else if (v instanceof ArrayBuffer) {
        out = v.slice(0);
      } else if (isView(v)) {
        const buffer = copy(v.buffer);
        if (v instanceof DataView) out = new DataView(buffer, v.byteOffset, v.byteLength);
        else {
          const T = TYPED.find((C) => v instanceof C);
          if (T === undefined) refuse('this kind of typed array');
          out = new T(buffer, v.byteOffset, v.length);
        }
      } else if (v instanceof Error) {
        const C = ERRORS[v.name] ?? Error;
        out = new C(`${v.message}`);
        if (typeof v.stack === 'string') field(out, 'stack', v.stack);
      } else if (v instanceof Boolean || v instanceof Number || v instanceof String || v instanceof BigInt) {
        out = Object(v.valueOf());
      } else if (v instanceof Promise) {
        refuse('a Promise (await it first and clone the value)');
      } else if (v instanceof WeakMap || v instanceof WeakSet || v instanceof WeakRef) {
        refuse('a WeakMap, WeakSet or WeakRef');
      } else {
        out = {};
        work.push(v, out, PROPS);
      }
      seen.set(v, out);
      return out;
    };
    const root = copy(value);
    while (work.length > 0) {
      const kind = work.pop(), to = work.pop(), from = work.pop();
      if (kind === MAP) for (const [k, v] of from) to.set(copy(k), copy(v));
      else if (kind === SET) for (const v of from) to.add(copy(v));
      else for (const k of keys(from)) field(to, k, copy(from[k]));
    }
    return root;
  } };
  return freeze({ structuredClone: freeze(structuredClone) });
})
