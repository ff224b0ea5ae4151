// console for model code: formats arguments like a terminal would and hands
// each line to the host, which caps what it keeps. Evaluated as a prelude;
// returns a factory taking the host sink.
(function (sink) {
  'use strict';
  const show = (v) => {
    if (typeof v === 'string') return v;
    if (v instanceof Error) return `${v.name}: ${v.message}`;
    if (typeof v === 'function') return `[Function ${v.name || 'anonymous'}]`;
    if (typeof v === 'undefined') return 'undefined';
    if (typeof v === 'bigint') return `${v}n`;
    if (typeof v === 'symbol') return v.toString();
    try {
      const s = JSON.stringify(v);
      return s === undefined ? String(v) : s;
    } catch (e) {
      return String(v);
    }
  };
  const line = (level) => (...args) => { sink(level, args.map(show).join(' ')); };
  return Object.freeze({
    log: line('log'), info: line('info'), debug: line('debug'),
    warn: line('warn'), error: line('error'),
  });
})
