// TextEncoder/TextDecoder (UTF-8 only) and atob/btoa with errors that say
// what to do. The byte work is native: `encode(string)` returns an
// ArrayBuffer of the string's UTF-8, `decode(buffer, offset, length, fatal,
// ignoreBOM)` a string (WHATWG: each maximal invalid subpart → U+FFFD),
// both with their sizes capped by the host; `atob`/`btoa` are QuickJS's own
// (forgiving-base64). Evaluated as a prelude; returns the globals.
(function (encode, decode, nativeAtob, nativeBtoa) {
  'use strict';
  const apply = Reflect.apply;
  const toWellFormed = String.prototype.toWellFormed;
  const exec = RegExp.prototype.exec;
  const freeze = Object.freeze;
  const isView = ArrayBuffer.isView;
  // WebIDL USVString: lone surrogates become U+FFFD.
  const usv = (v) => apply(toWellFormed, `${v}`, []);

  class TextEncoder {
    get encoding() { return 'utf-8'; }
    encode(input = '') {
      return new Uint8Array(encode(usv(input)));
    }
    encodeInto(source, destination) {
      if (!(destination instanceof Uint8Array)) {
        throw new TypeError('TextEncoder.encodeInto(source, destination): destination must be a Uint8Array');
      }
      // Same length as the source: a lone surrogate is one U+FFFD unit.
      const s = usv(source);
      const room = destination.length;
      let read = 0, written = 0;
      while (read < s.length) {
        const c = s.codePointAt(read);
        const n = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
        if (written + n > room) break;
        if (n === 1) {
          destination[written] = c;
        } else if (n === 2) {
          destination[written] = 0xc0 | (c >> 6);
          destination[written + 1] = 0x80 | (c & 0x3f);
        } else if (n === 3) {
          destination[written] = 0xe0 | (c >> 12);
          destination[written + 1] = 0x80 | ((c >> 6) & 0x3f);
          destination[written + 2] = 0x80 | (c & 0x3f);
        } else {
          destination[written] = 0xf0 | (c >> 18);
          destination[written + 1] = 0x80 | ((c >> 12) & 0x3f);
          destination[written + 2] = 0x80 | ((c >> 6) & 0x3f);
          destination[written + 3] = 0x80 | (c & 0x3f);
        }
        written += n;
        read += c > 0xffff ? 2 : 1;
      }
      return { read, written };
    }
    get [Symbol.toStringTag]() { return 'TextEncoder'; }
  }

  const LABELS = ['utf-8', 'utf8', 'unicode-1-1-utf-8', 'unicode11utf8', 'unicode20utf8', 'x-unicode20utf8'];

  class TextDecoder {
    #fatal;
    #ignoreBOM;
    constructor(label = 'utf-8', options = undefined) {
      const name = `${label}`.trim().toLowerCase();
      if (!LABELS.includes(name)) {
        throw new RangeError(`TextDecoder: the encoding ${JSON.stringify(`${label}`)} is not supported here, only utf-8 is; ask the API for UTF-8, or decode the bytes yourself`);
      }
      this.#fatal = Boolean(options?.fatal);
      this.#ignoreBOM = Boolean(options?.ignoreBOM);
    }
    get encoding() { return 'utf-8'; }
    get fatal() { return this.#fatal; }
    get ignoreBOM() { return this.#ignoreBOM; }
    decode(input = undefined, options = undefined) {
      if (options?.stream) {
        throw new TypeError('TextDecoder.decode: {stream: true} is not supported here; join the chunks into one Uint8Array and decode it once');
      }
      if (input === undefined) return '';
      let buffer, offset, length;
      if (input instanceof ArrayBuffer) {
        buffer = input; offset = 0; length = input.byteLength;
      } else if (isView(input)) {
        buffer = input.buffer; offset = input.byteOffset; length = input.byteLength;
      } else {
        throw new TypeError('TextDecoder.decode(input): input must be an ArrayBuffer, a typed array (e.g. a Uint8Array) or a DataView');
      }
      if (!(buffer instanceof ArrayBuffer)) {
        // A SharedArrayBuffer: decode a copy.
        buffer = new Uint8Array(buffer, offset, length).slice().buffer;
        offset = 0;
      }
      return decode(buffer, offset, length, this.#fatal, this.#ignoreBOM);
    }
    get [Symbol.toStringTag]() { return 'TextDecoder'; }
  }

  const NOT_LATIN1 = /[^\u0000-\u00ff]/;
  // Methods, so that neither has a `prototype`.
  const { btoa, atob } = {
    btoa(data) {
      if (arguments.length === 0) throw new TypeError('btoa(data): 1 argument required, but only 0 present');
      const s = `${data}`;
      const bad = apply(exec, NOT_LATIN1, [s]);
      if (bad !== null) {
        const c = bad[0].codePointAt(0).toString(16).toUpperCase().padStart(4, '0');
        throw new DOMException(
          `btoa: the string has a character outside Latin-1 (U+${c} at index ${bad.index}); btoa encodes bytes, one per character, so turn text into UTF-8 bytes first: new TextEncoder().encode(text).toBase64(), or btoa(String.fromCharCode(...new TextEncoder().encode(text))) for short text`,
          'InvalidCharacterError',
        );
      }
      return nativeBtoa(s);
    },
    atob(data) {
      if (arguments.length === 0) throw new TypeError('atob(data): 1 argument required, but only 0 present');
      const s = `${data}`;
      try {
        return nativeAtob(s);
      } catch (e) {
        if (!(e instanceof DOMException)) throw e;
        throw new DOMException(
          `atob: the string is not valid base64 (only A-Z, a-z, 0-9, + and / with = padding; whitespace is ignored)${/[-_]/.test(s) ? '; it looks like base64url: replace - with + and _ with / first' : ''}. The result is a string of bytes; new TextDecoder().decode(Uint8Array.from(atob(s), (c) => c.charCodeAt(0))) turns UTF-8 bytes into text`,
          'InvalidCharacterError',
        );
      }
    },
  };

  for (const C of [TextEncoder, TextDecoder]) {
    freeze(C.prototype);
    freeze(C);
  }
  return freeze({ TextEncoder, TextDecoder, atob: freeze(atob), btoa: freeze(btoa) });
})
