// URL and URLSearchParams for model code (WHATWG URL Standard). Parsing,
// setters and application/x-www-form-urlencoded come from the host's `url`
// crate — the reference implementation — through four native functions that
// take and return only strings, with their length capped there:
//   parse(input, base?)       -> parts, or undefined when it does not parse
//   set(href, field, value)   -> parts after the setter (a setter that does
//                                not apply leaves them as they were)
//   formParse(query)          -> [name, value, name, value, ...]
//   formSerialize([n, v, ...]) -> 'a=1&b=x+y'
// parts: [href, origin, protocol, username, password, host, hostname,
// port, pathname, search, hash]. Evaluated as a prelude; returns the globals.
(function (parse, set, formParse, formSerialize) {
  'use strict';
  const apply = Reflect.apply;
  const toWellFormed = String.prototype.toWellFormed;
  const freeze = Object.freeze;
  // WebIDL USVString: lone surrogates become U+FFFD.
  const usv = (v) => apply(toWellFormed, `${v}`, []);
  const describe = (s) => (s.length > 80 ? JSON.stringify(s.slice(0, 80)) + '…' : JSON.stringify(s));
  const HREF = 0, ORIGIN = 1, PROTOCOL = 2, USERNAME = 3, PASSWORD = 4, HOST = 5, HOSTNAME = 6, PORT = 7,
    PATHNAME = 8, SEARCH = 9, HASH = 10;
  const needs = (n, have, what) => {
    if (have < n) throw new TypeError(`${what}: ${n} argument${n === 1 ? '' : 's'} required, but only ${have} present`);
  };

  const pairs = (query) => {
    const flat = formParse(query);
    const out = [];
    for (let i = 0; i < flat.length; i += 2) out.push([flat[i], flat[i + 1]]);
    return out;
  };
  const serialize = (list) => {
    const flat = [];
    for (const [n, v] of list) flat.push(n, v);
    return formSerialize(flat);
  };

  // Set by URLSearchParams' static block: internal access for URL.
  let attach, reload;

  class URLSearchParams {
    #list = [];
    // The URL this object is the searchParams of (update its query on change).
    #url = null;

    constructor(init = '') {
      if (init !== null && (typeof init === 'object' || typeof init === 'function')) {
        if (#list in init) {
          this.#list = init.#list.map(([n, v]) => [n, v]);
        } else if (typeof init[Symbol.iterator] === 'function') {
          for (const pair of init) {
            const p = [...pair];
            if (p.length !== 2) {
              throw new TypeError(`URLSearchParams: each pair must have exactly two items (name and value), not ${p.length}`);
            }
            this.#list.push([usv(p[0]), usv(p[1])]);
          }
        } else {
          for (const k of Object.keys(init)) this.#list.push([usv(k), usv(init[k])]);
        }
      } else {
        const s = usv(init);
        this.#list = pairs(s[0] === '?' ? s.slice(1) : s);
      }
    }

    static {
      attach = (params, url) => { params.#url = url; };
      reload = (params, search) => { params.#list = pairs(search.slice(1)); };
    }

    #update() {
      if (this.#url !== null) this.#url(serialize(this.#list));
    }

    get size() { return this.#list.length; }
    append(name, value) {
      needs(2, arguments.length, "URLSearchParams.append");
      this.#list.push([usv(name), usv(value)]);
      this.#update();
    }
    delete(name, value) {
      needs(1, arguments.length, "URLSearchParams.delete");
      const n = usv(name);
      const v = value === undefined ? undefined : usv(value);
      this.#list = this.#list.filter(([k, x]) => !(k === n && (v === undefined || x === v)));
      this.#update();
    }
    get(name) {
      needs(1, arguments.length, "URLSearchParams.get");
      const n = usv(name);
      const hit = this.#list.find(([k]) => k === n);
      return hit === undefined ? null : hit[1];
    }
    getAll(name) {
      needs(1, arguments.length, "URLSearchParams.getAll");
      const n = usv(name);
      return this.#list.filter(([k]) => k === n).map(([, v]) => v);
    }
    has(name, value) {
      needs(1, arguments.length, "URLSearchParams.has");
      const n = usv(name);
      const v = value === undefined ? undefined : usv(value);
      return this.#list.some(([k, x]) => k === n && (v === undefined || x === v));
    }
    set(name, value) {
      needs(2, arguments.length, "URLSearchParams.set");
      const n = usv(name), v = usv(value);
      const at = this.#list.findIndex(([k]) => k === n);
      if (at < 0) this.#list.push([n, v]);
      else {
        this.#list[at] = [n, v];
        this.#list = this.#list.filter(([k], i) => i <= at || k !== n);
      }
      this.#update();
    }
    sort() {
      // Stable, by UTF-16 code units, as the standard says.
      this.#list.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      this.#update();
    }
    forEach(callback, thisArg) {
      if (typeof callback !== 'function') throw new TypeError('URLSearchParams.forEach(callback): callback must be a function');
      for (let i = 0; i < this.#list.length; i++) {
        const [n, v] = this.#list[i];
        apply(callback, thisArg, [v, n, this]);
      }
    }
    keys() { return this.#list.map(([n]) => n)[Symbol.iterator](); }
    values() { return this.#list.map(([, v]) => v)[Symbol.iterator](); }
    entries() { return this.#list.map(([n, v]) => [n, v])[Symbol.iterator](); }
    [Symbol.iterator]() { return this.entries(); }
    toString() { return serialize(this.#list); }
    get [Symbol.toStringTag]() { return 'URLSearchParams'; }
  }

  class URL {
    #parts;
    #params;

    constructor(url, base) {
      needs(1, arguments.length, 'URL');
      const input = usv(url);
      const against = base === undefined ? undefined : usv(base);
      const parts = parse(input, against);
      if (parts === undefined) {
        throw new TypeError(`Invalid URL: ${describe(input)}${against === undefined ? ' (a relative URL needs a base: new URL(path, "https://host/"))' : ` against the base ${describe(against)}`}`);
      }
      this.#parts = parts;
      this.#params = new URLSearchParams(parts[SEARCH]);
      attach(this.#params, (query) => {
        this.#parts = set(this.#parts[HREF], 'search', query);
      });
    }

    static canParse(url, base) {
      needs(1, arguments.length, 'URL.canParse');
      return parse(usv(url), base === undefined ? undefined : usv(base)) !== undefined;
    }
    static parse(url, base) {
      needs(1, arguments.length, 'URL.parse');
      try {
        return new URL(url, base);
      } catch {
        return null;
      }
    }

    #set(field, value) {
      this.#parts = set(this.#parts[HREF], field, usv(value));
      if (field === 'search') reload(this.#params, this.#parts[SEARCH]);
    }

    get href() { return this.#parts[HREF]; }
    set href(value) {
      const input = usv(value);
      const parts = parse(input, undefined);
      if (parts === undefined) throw new TypeError(`Invalid URL: ${describe(input)}`);
      this.#parts = parts;
      reload(this.#params, parts[SEARCH]);
    }
    get origin() { return this.#parts[ORIGIN]; }
    get protocol() { return this.#parts[PROTOCOL]; }
    set protocol(v) { this.#set('protocol', v); }
    get username() { return this.#parts[USERNAME]; }
    set username(v) { this.#set('username', v); }
    get password() { return this.#parts[PASSWORD]; }
    set password(v) { this.#set('password', v); }
    get host() { return this.#parts[HOST]; }
    set host(v) { this.#set('host', v); }
    get hostname() { return this.#parts[HOSTNAME]; }
    set hostname(v) { this.#set('hostname', v); }
    get port() { return this.#parts[PORT]; }
    set port(v) { this.#set('port', v); }
    get pathname() { return this.#parts[PATHNAME]; }
    set pathname(v) { this.#set('pathname', v); }
    get search() { return this.#parts[SEARCH]; }
    set search(v) { this.#set('search', v); }
    get searchParams() { return this.#params; }
    get hash() { return this.#parts[HASH]; }
    set hash(v) { this.#set('hash', v); }
    toString() { return this.#parts[HREF]; }
    toJSON() { return this.#parts[HREF]; }
    get [Symbol.toStringTag]() { return 'URL'; }
  }

  for (const C of [URL, URLSearchParams]) {
    freeze(C.prototype);
    freeze(C);
  }
  return freeze({ URL, URLSearchParams });
})
