//! How `codemode audit` prints: a table, one execution as text, JSON, and
//! JSONL for a SIEM.
//!
//! Code, paths and messages come from model code and upstreams: control
//! characters (terminal escape sequences) are shown as `\u{…}` in the text
//! renderings, never written raw. JSON escapes them by itself.

use std::io::{self, Write};

use serde_json::{json, Value};

use crate::time::{format_rfc3339, format_short};
use crate::{CallRecord, ExecutionSummary, StoredExecution};

/// `s` with control characters (except in `keep`) escaped.
fn safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// `12.3 ms`, `1.25 s`.
pub fn format_duration(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

/// `512 B`, `1.2 KiB`, `3.4 MiB`.
pub fn format_bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

fn principal(p: &Option<String>) -> String {
    p.as_deref().map(safe).unwrap_or_else(|| "-".into())
}

/// The table: one line per execution (time in UTC, principal, tool,
/// outcome, duration, calls, first line of the code).
pub fn write_table(rows: &[ExecutionSummary], out: &mut dyn Write) -> io::Result<()> {
    if rows.is_empty() {
        return writeln!(out, "no executions match");
    }
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            let mut outcome = safe(&r.outcome);
            if r.dry_run {
                outcome.push_str(" (dry)");
            }
            [
                r.id.to_string(),
                format_short(r.time_ms),
                principal(&r.principal),
                r.tool.as_str().to_string(),
                outcome,
                format_duration(r.duration_ms),
                r.calls.to_string(),
            ]
        })
        .collect();
    let head = ["ID", "TIME (UTC)", "PRINCIPAL", "TOOL", "OUTCOME", "DURATION", "CALLS"];
    let mut width = head.map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count()).min(40);
        }
    }
    let line = |cols: [&str; 7], code: &str, out: &mut dyn Write| -> io::Result<()> {
        let mut s = String::new();
        for (i, (c, w)) in cols.iter().zip(width).enumerate() {
            let c: String = c.chars().take(w).collect();
            // Numbers right-aligned: id, duration, calls.
            if matches!(i, 0 | 5 | 6) {
                s.push_str(&format!("{c:>w$}  "));
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.push_str(code);
        writeln!(out, "{}", s.trim_end())
    };
    line(head, "CODE", out)?;
    for (row, r) in cells.iter().zip(rows) {
        let cols = [&row[0], &row[1], &row[2], &row[3], &row[4], &row[5], &row[6]].map(String::as_str);
        line(cols, &safe(&r.code_line), out)?;
    }
    Ok(())
}

/// One execution and its calls, as readable text.
pub fn write_show(exec: &StoredExecution, calls: &[CallRecord], out: &mut dyn Write) -> io::Result<()> {
    let e = &exec.record;
    writeln!(out, "Execution {}  {}", exec.id, format_rfc3339(e.time_ms))?;
    let field = |k: &str, v: &str, out: &mut dyn Write| writeln!(out, "  {k:<12} {v}");
    field("principal", &e.principal.as_deref().map(safe).unwrap_or_else(|| "- (local user)".into()), out)?;
    if let Some(s) = &e.session_id {
        field("session", &safe(s), out)?;
    }
    if let Some(h) = &e.host {
        field("host", &safe(h), out)?;
    }
    if e.client_name.is_some() || e.client_version.is_some() {
        let c = format!("{} {}", e.client_name.as_deref().unwrap_or("?"), e.client_version.as_deref().unwrap_or(""));
        field("client", &safe(c.trim()), out)?;
    }
    field("tool", &format!("{}{}", e.tool.as_str(), if e.dry_run { " (dry run)" } else { "" }), out)?;
    let mut outcome = safe(&e.outcome);
    if !e.is_ok() {
        if let Some(n) = &e.error_name {
            outcome.push_str(&format!(" — {}", safe(n)));
        }
        if let Some(m) = &e.error_message {
            outcome.push_str(&format!(": {}", safe(m)));
        }
    }
    field("outcome", &outcome, out)?;
    field("duration", &format_duration(e.duration_ms), out)?;
    if let Some(t) = e.result_tokens {
        field("result", &format!("{t} tokens{}", if e.shortened { " (shortened)" } else { "" }), out)?;
    } else if e.shortened {
        field("result", "shortened", out)?;
    }
    field("code sha256", &exec.code_sha256, out)?;
    writeln!(out)?;
    writeln!(out, "Code:")?;
    let lines: Vec<&str> = e.code.lines().collect();
    let w = lines.len().max(1).to_string().len();
    for (i, l) in lines.iter().enumerate() {
        writeln!(out, "  {:>w$} | {}", i + 1, safe(l))?;
    }
    writeln!(out)?;
    if calls.is_empty() {
        return writeln!(out, "Calls: none");
    }
    writeln!(out, "Calls ({}):", calls.len())?;
    let w = calls.iter().map(|c| c.seq).max().unwrap_or(1).to_string().len();
    for c in calls {
        let what = match &c.method {
            Some(m) => format!("{} {} {}", safe(&c.target), safe(m), safe(&c.path)),
            None => format!("{} codemode.{}", safe(&c.target), safe(&c.path)),
        };
        let result = match (c.ok, c.status, &c.error_name) {
            (true, Some(s), _) => format!("{s} ok"),
            (true, None, _) => "ok".to_string(),
            (false, Some(s), n) => format!("{s} {}", n.as_deref().map(safe).unwrap_or_else(|| "error".into())),
            (false, None, n) => n.as_deref().map(safe).unwrap_or_else(|| "error".into()),
        };
        writeln!(
            out,
            "  {:>w$}  {}  {} {what} → {result}  {}  out {} in {}",
            c.seq,
            &format_rfc3339(c.at_ms)[11..23],
            c.kind.as_str(),
            format_duration(c.duration_ms),
            format_bytes(c.bytes_out),
            format_bytes(c.bytes_in),
        )?;
        let pad = " ".repeat(w + 4);
        let sub = |k: &str, v: &str, out: &mut dyn Write| writeln!(out, "{pad}{k:<11} {v}");
        if let Some(t) = &c.template {
            sub("template", &safe(t), out)?;
        }
        if let Some(a) = &c.allowed_by {
            sub("allowed by", &safe(a), out)?;
        }
        if let Some(a) = &c.approval {
            sub("approval", &safe(&describe_approval(a)), out)?;
        }
        if let Some(r) = &c.refused {
            sub("refused", &safe(&describe_refusal(r)), out)?;
        }
        if c.dry_run {
            sub("dry run", "planned, not sent", out)?;
        }
    }
    Ok(())
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn describe_approval(a: &Value) -> String {
    let mut s = a.get("decision").map(text).unwrap_or_else(|| "?".into());
    if let Some(by) = a.get("by") {
        s.push_str(&format!(" by {}", text(by)));
    }
    if let Some(at) = a.get("atMs").and_then(Value::as_i64) {
        s.push_str(&format!(" at {}", format_rfc3339(at)));
    }
    if let Some(rule) = a.get("rule") {
        s.push_str(&format!(" (rule {})", text(rule)));
    }
    s
}

fn describe_refusal(r: &Value) -> String {
    let mut s = r.get("error").map(text).unwrap_or_else(|| "refused".into());
    if let Some(reason) = r.get("reason") {
        s.push_str(&format!(" ({})", text(reason)));
    }
    if let Some(rule) = r.get("rule") {
        match rule {
            Value::Object(m) => {
                let effect = m.get("effect").map(text).unwrap_or_default();
                let pattern = m.get("pattern").map(text).unwrap_or_default();
                let from = m.get("from").map(text).unwrap_or_default();
                s.push_str(&format!(": {effect} {pattern} ({from})"));
            }
            other => s.push_str(&format!(": {}", text(other))),
        }
    }
    s
}

/// One execution with its calls as a JSON object: every stored field
/// (camelCase), `time` and each call's `at` also as RFC 3339, and `calls`.
pub fn execution_json(exec: &StoredExecution, calls: &[CallRecord]) -> Value {
    let mut v = serde_json::to_value(exec).unwrap_or(Value::Null);
    v["time"] = json!(format_rfc3339(exec.record.time_ms));
    let calls: Vec<Value> = calls
        .iter()
        .map(|c| {
            let mut cv = serde_json::to_value(c).unwrap_or(Value::Null);
            cv["at"] = json!(format_rfc3339(c.at_ms));
            cv
        })
        .collect();
    v["calls"] = Value::Array(calls);
    v
}

/// A summary as JSON (with `time` as RFC 3339).
pub fn summary_json(s: &ExecutionSummary) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
    v["time"] = json!(format_rfc3339(s.time_ms));
    v
}

/// The summaries as one pretty JSON array.
pub fn write_json(rows: &[ExecutionSummary], out: &mut dyn Write) -> io::Result<()> {
    let arr = Value::Array(rows.iter().map(summary_json).collect());
    serde_json::to_writer_pretty(&mut *out, &arr)?;
    writeln!(out)
}

/// One JSONL line: the execution with its calls, compact, newline-ended.
pub fn write_jsonl(exec: &StoredExecution, calls: &[CallRecord], out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &execution_json(exec, calls))?;
    out.write_all(b"\n")
}
