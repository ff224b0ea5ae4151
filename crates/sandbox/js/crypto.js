// crypto.getRandomValues and crypto.randomUUID for model code, from the
// host's CSPRNG (`random(n)`: an ArrayBuffer of n random bytes, n capped at
// 65536 there too). Math.random is QuickJS's own and is left alone.
// Evaluated as a prelude; returns the globals.
(function (random) {
  'use strict';
  const freeze = Object.freeze;
  const MAX_BYTES = 65536;
  const INTEGER_ARRAYS = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
    BigInt64Array, BigUint64Array];
  const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

  // Methods, so that neither has a `prototype`.
  const { getRandomValues, randomUUID } = {
    getRandomValues(array) {
      if (!INTEGER_ARRAYS.some((T) => array instanceof T)) {
        throw new DOMException('crypto.getRandomValues(array): array must be an integer typed array such as a Uint8Array (not a Float64Array, a DataView or a plain array), e.g. crypto.getRandomValues(new Uint8Array(16))', 'TypeMismatchError');
      }
      const n = array.byteLength;
      if (n > MAX_BYTES) {
        throw new DOMException(`crypto.getRandomValues: the array has ${n} bytes, more than the 65536 allowed per call; fill it in parts of at most 65536 bytes (array.subarray(i, i + 65536))`, 'QuotaExceededError');
      }
      new Uint8Array(array.buffer, array.byteOffset, n).set(new Uint8Array(random(n)));
      return array;
    },
    randomUUID() {
      const b = new Uint8Array(random(16));
      b[6] = (b[6] & 0x0f) | 0x40; // version 4
      b[8] = (b[8] & 0x3f) | 0x80; // variant 10
      let s = '';
      for (let i = 0; i < 16; i++) {
        s += HEX[b[i]];
        if (i === 3 || i === 5 || i === 7 || i === 9) s += '-';
      }
      return s;
    },
  };

  return freeze({ crypto: freeze({ getRandomValues: freeze(getRandomValues), randomUUID: freeze(randomUUID) }) });
})
