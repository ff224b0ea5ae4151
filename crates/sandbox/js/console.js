// console for model code: formats arguments like a terminal would (and
// console.table as a text table) and hands each line to the host, which
// caps what it keeps. Evaluated as a prelude;
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

  // console.table: a box-drawn text table, as Node prints it, of at most
  // MAX_ROWS rows and MAX_COLUMNS columns, each cell cut to MAX_CELL
  // characters — the console's byte cap then applies to it like any line.
  const MAX_ROWS = 100, MAX_COLUMNS = 20, MAX_CELL = 40;
  const cell = (v) => {
    const s = typeof v === 'string' ? `'${v}'` : show(v);
    return s.length > MAX_CELL ? `${s.slice(0, MAX_CELL - 1)}…` : s;
  };
  const table = (data, columns) => {
    if (data === null || typeof data !== 'object') return show(data);
    let entries;
    if (data instanceof Map) entries = [...data.entries()];
    else if (data instanceof Set) entries = [...data.values()].map((v, i) => [i, v]);
    else entries = Object.entries(data);
    const shown = entries.slice(0, MAX_ROWS);
    const picked = Array.isArray(columns) ? columns.map(String) : null;
    const names = [];
    let values = false;
    const rows = shown.map(([k, v]) => {
      const row = new Map();
      if (v !== null && typeof v === 'object') {
        for (const c of picked ?? Object.keys(v)) {
          if (!names.includes(c)) {
            if (names.length >= MAX_COLUMNS) continue;
            names.push(c);
          }
          if (Object.prototype.hasOwnProperty.call(v, c)) row.set(c, cell(v[c]));
        }
      } else {
        values = true;
        row.set('\u0000Values', cell(v));
      }
      return [String(k), row];
    });
    const heads = ['(index)', ...names, ...(values ? ['Values'] : [])];
    const ids = [...names, ...(values ? ['\u0000Values'] : [])];
    const body = rows.map(([k, row]) => [k, ...ids.map((c) => row.get(c) ?? '')]);
    const widths = heads.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)) + 2);
    const rule = (l, m, r) => l + widths.map((w) => '─'.repeat(w)).join(m) + r;
    const render = (cells) => '│' + cells.map((c, i) => ` ${c}${' '.repeat(widths[i] - c.length - 1)}`).join('│') + '│';
    const out = [rule('┌', '┬', '┐'), render(heads), rule('├', '┼', '┤'), ...body.map(render), rule('└', '┴', '┘')];
    if (entries.length > shown.length) out.push(`… ${entries.length - shown.length} more rows`);
    return out.join('\n');
  };
  return Object.freeze({
    log: line('log'), info: line('info'), debug: line('debug'),
    warn: line('warn'), error: line('error'),
    table: (data, columns) => { sink('log', table(data, columns)); },
  });
})
