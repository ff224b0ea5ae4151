//! The cost of `to_javascript` per call: a 2 KB TypeScript script (types
//! blanked, an enum rewritten) and a 2 KB JavaScript one (passed through).
//!
//! ```sh
//! cargo run --release -p codemode-typescript --example strip_bench -- 2000
//! ```

use std::borrow::Cow;
use std::time::Instant;

use codemode_typescript::to_javascript;

/// A search a model might write, in TypeScript, about 2 KB.
const TS: &str = r#"interface Operation { summary?: string; description?: string; operationId?: string; tags?: string[] }
type Methods = Record<"get" | "post" | "put" | "patch" | "delete", Operation>;
enum Kind { Read = "read", Write = "write" }
interface Row { method: string; path: string; summary: string; kind: Kind }

abstract class Report<T> {
  protected readonly rows: T[] = [];
  constructor() {}
  add(row: T): this { this.rows.push(row); return this; }
  abstract title(): string;
  size(): number { return this.rows.length; }
}

class RowReport extends Report<Row> implements Iterable<Row> {
  title(): string { return `${this.size()} operations`; }
  *[Symbol.iterator](): Iterator<Row> { yield* this.rows; }
}

function kindOf(method: string): Kind {
  return method === "get" ? Kind.Read : Kind.Write;
}

function matches<T extends { summary?: string }>(op: T, words: readonly string[]): boolean {
  const text = (op.summary ?? "").toLowerCase();
  return words.some((w: string): boolean => text.includes(w));
}

async (): Promise<Row[]> => {
  const words: string[] = ["dns", "record", "zone"];
  const rows: Row[] = [];
  for (const [path, ops] of Object.entries(spec.paths as Record<string, Methods>)) {
    if (!path.startsWith("/zones/")) continue;
    for (const [method, op] of Object.entries(ops) as [string, Operation][]) {
      if (method === "parameters" || !matches<Operation>(op, words)) continue;
      rows.push({ method: method.toUpperCase(), path, summary: op.summary!, kind: kindOf(method) } satisfies Row);
    }
  }
  const byPath = new Map<string, Row[]>();
  for (const row of rows) {
    const list: Row[] = byPath.get(row.path) ?? [];
    list.push(row);
    byPath.set(row.path, list);
  }
  const out: Row[] = [];
  for (const [, list] of byPath) out.push(...list.sort((a: Row, b: Row): number => a.method.localeCompare(b.method)));
  return out.slice(0, 50) as Row[];
}
"#;

fn main() {
    let runs: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(2000);
    let js_owned = to_javascript(TS).expect("the sample is TypeScript").into_owned();
    // The same script as JavaScript (enum and all): what a model writing
    // JavaScript would send.
    let js: &str = &js_owned;
    assert!(matches!(to_javascript(js), Ok(Cow::Borrowed(_))), "the JavaScript sample has no TypeScript");
    for (name, code) in [("typescript", TS), ("javascript", js)] {
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            let out = to_javascript(code).expect("strips");
            std::hint::black_box(&out);
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
        times.sort_by(|a, b| a.total_cmp(b));
        let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
        println!(
            "{name}: {} bytes, median {:.1} µs, p90 {:.1} µs, p99 {:.1} µs ({runs} runs)",
            code.len(),
            pct(0.5),
            pct(0.9),
            pct(0.99)
        );
    }
}
