// The bridge between model code and host functions. `send` (a host function)
// starts an asynchronous host call and returns its id; the host later calls
// `complete(id, ok, json)`. Everything crosses as JSON text, parsed and
// checked on the host side. Evaluated as a prelude; returns the bridge.
//
// Bytes cross as JSON too: every ArrayBuffer, typed array and DataView turns
// into {"$bytes": "<base64>"} in JSON.stringify (request arguments and the
// code's result alike), and a binary response arrives as "$bytes" beside
// `data`, which becomes a Uint8Array here. `bytes` is the native codec:
// toBase64(Uint8Array), fromBase64(string) → Uint8Array, utf8(Uint8Array).
(function (send, bytes) {
  'use strict';
  const pending = new Map();
  const BYTES = '$bytes';
  const view = (v) => (v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  const toJSON = { value: function () { return { [BYTES]: bytes.toBase64(view(this)) }; }, writable: true, configurable: true };
  for (const proto of [ArrayBuffer.prototype, Object.getPrototypeOf(Uint8Array.prototype), DataView.prototype]) {
    Object.defineProperty(proto, 'toJSON', toJSON);
  }
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
  // Models trained on other clients reach for `response.result`
  // (Cloudflare's envelope), `await response.json()` and `response.ok`
  // (fetch). A response stays exactly {status, headers, data} — these are
  // non-enumerable extras, invisible to JSON.stringify and Object.keys: the
  // envelope's fields where the body is one, json()/text() for the body,
  // `ok`, and an error naming `.data` for a `.result` or `.body` that is not
  // there (instead of an `undefined` that fails a line later).
  const ENVELOPE = ['result', 'success', 'errors', 'messages', 'result_info'];
  const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
  // A binary body: `data` is a Uint8Array; `base64` (non-enumerable) is the
  // same bytes as base64, to pass on (an image block, an upload).
  const binary = (r) => {
    const b64 = r[BYTES];
    delete r[BYTES];
    r.data = bytes.fromBase64(b64);
    Object.defineProperty(r, 'base64', { value: b64, enumerable: false });
  };
  const decorate = (r) => {
    if (!isObject(r) || !('data' in r)) return r;
    const isBytes = Object.prototype.hasOwnProperty.call(r, BYTES) && typeof r[BYTES] === 'string';
    if (isBytes) binary(r);
    const d = r.data;
    const envelope = isObject(d) && 'result' in d && ('success' in d || 'errors' in d);
    const shape = isBytes ? `a Uint8Array of ${d.length} bytes; \`.base64\` has them as base64` : Array.isArray(d) ? 'an array' : isObject(d) ? `an object with ${Object.keys(d).slice(0, 12).map((k) => '`' + k + '`').join(', ') || 'no keys'}` : typeof d;
    const teach = (name) => () => {
      throw new TypeError(`a response has no \`.${name}\`: it is {status, headers, data}, and the body is in \`.data\` (here ${shape})`);
    };
    const extra = (k, desc) => { if (!(k in r)) Object.defineProperty(r, k, { ...desc, enumerable: false }); };
    if (envelope) for (const k of ENVELOPE) extra(k, { get: () => d[k] });
    else extra('result', { get: teach('result') });
    extra('body', { get: teach('body') });
    extra('ok', { value: r.status >= 200 && r.status < 300 });
    extra('json', { value: async () => d });
    extra('text', { value: async () => (isBytes ? bytes.utf8(d) : typeof d === 'string' ? d : JSON.stringify(d)) });
    if (isBytes) {
      extra('arrayBuffer', { value: async () => d.buffer });
      extra('bytes', { value: async () => d });
    }
    return r;
  };
  // Models trained on other clients call `client.get(path)` (axios) or
  // `client.rest.issues.listForRepo(...)` (octokit). A client has only
  // `request`: these names are non-enumerable members (Object.keys still
  // shows `request` alone) that throw a TypeError saying which call to
  // write instead, rather than "not a function" or "cannot read property".
  const route = (path) => (typeof path === 'string' && path.length <= 200 ? path : '/path');
  const misused = (name) => {
    const members = {};
    for (const verb of ['get', 'head', 'delete', 'options', 'post', 'put', 'patch']) {
      const method = verb.toUpperCase();
      members[verb] = {
        value: (path) => {
          const call = ['POST', 'PUT', 'PATCH'].includes(method)
            ? `${name}.request({ method: ${JSON.stringify(method)}, path: ${JSON.stringify(route(path))}, body })`
            : `${name}.request(${JSON.stringify(`${method} ${route(path)}`)})`;
          throw new TypeError(`\`${name}.${verb}()\` does not exist: a client has only \`request\`. Write \`await ${call}\`; path parameters and the query go in a second argument: \`${name}.request("GET /items/{id}", { id, per_page: 50 })\``);
        },
      };
    }
    members.rest = {
      get: () => {
        throw new TypeError(`\`${name}.rest\` does not exist: there are no generated methods such as \`${name}.rest.issues.listForRepo(…)\`; call the operation's route with \`${name}.request\`, e.g. \`await ${name}.request("GET /repos/{owner}/{repo}/issues", { owner, repo })\` (find the route with \`search\`)`);
      },
    };
    return members;
  };
  // A GraphQL API's client has only `graphql(query, variables?, options?)`;
  // models trained on Apollo, urql or REST clients reach for `query`,
  // `mutate` or `request`: non-enumerable members that say what to write.
  const misusedGraphql = (name) => {
    const teach = (what) => ({
      value: () => {
        throw new TypeError(`\`${name}.${what}()\` does not exist: \`${name}\` is a GraphQL API and its client has only \`graphql\`. Write \`await ${name}.graphql("query($id: ID!) { node(id: $id) { id } }", { id })\`; it resolves to {data, errors?, extensions?} and rejects on GraphQL errors (pass {partial: true} as the third argument to get partial data instead)`);
      },
    });
    return { request: teach('request'), query: teach('query'), mutate: teach('mutate'), mutation: teach('mutation') };
  };
  return {
    complete: (id, ok, json) => {
      const p = pending.get(id);
      if (p === undefined) return;
      pending.delete(id);
      const v = JSON.parse(json);
      if (ok) p.resolve(v); else p.reject(toError(v));
    },
    client: (name, methods) => {
      const client = Object.fromEntries(methods.map((m) => [m, m === 'request'
        ? (...args) => call(name, m, args).then(decorate)
        : (...args) => call(name, m, args)]));
      if (methods.includes('request')) {
        const members = misused(name);
        for (const k of Object.keys(members)) if (!(k in client)) Object.defineProperty(client, k, members[k]);
      }
      if (methods.includes('graphql')) {
        const members = misusedGraphql(name);
        for (const k of Object.keys(members)) if (!(k in client)) Object.defineProperty(client, k, members[k]);
      }
      return Object.freeze(client);
    },
    // A client whose methods are not known in advance (portal tools): any
    // property is a method; the host says when a name does not exist.
    dynamic: (name) => new Proxy(Object.freeze({}), {
      get: (_, m) => (typeof m === 'string' && m !== 'then') ? (...args) => call(name, m, args) : undefined,
    }),
  };
})
