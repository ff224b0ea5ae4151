//! Errors that teach: a `ReferenceError` for a global the sandbox does not
//! have (`fetch`, `require`, `process`, `Buffer`, `setImmediate`, `Intl`…), or one that
//! belongs to the other tool (`spec` in `execute`, a client in `search`),
//! and a `SyntaxError` from a static `import`, get the supported way to do
//! the same, with an example from the configured APIs — never a hard-coded
//! one. Applied to what a call returns, before it is rendered.

use codemode_sandbox::{ErrorKind, Outcome};
use codemode_spec::summary::Operation;

use crate::service::LoadedApi;
use crate::tools::ToolKind;

/// What the code can use instead of a global it reached for.
enum Missing {
    /// `fetch`, `XMLHttpRequest`, `WebSocket`, `axios`: network access.
    Network,
    /// `require`, `import()`: modules.
    Modules,
    /// `process`, `Deno`, `Bun`: the environment.
    Environment,
    /// `Buffer`: Node's bytes (the web-standard ones are there).
    Bytes,
    /// `setImmediate`, `clearImmediate`: Node's timers (`setTimeout` is there).
    Immediate,
    /// `Intl`: locale-aware formatting.
    Intl,
}

fn missing(name: &str) -> Option<Missing> {
    Some(match name {
        "fetch" | "XMLHttpRequest" | "WebSocket" | "axios" | "Request" | "Headers" => Missing::Network,
        "require" | "module" | "exports" | "__dirname" | "__filename" => Missing::Modules,
        "process" | "Deno" | "Bun" => Missing::Environment,
        "Buffer" => Missing::Bytes,
        "setImmediate" | "clearImmediate" => Missing::Immediate,
        "Intl" => Missing::Intl,
        _ => return None,
    })
}

/// The operation examples show: the first GET without path parameters, or
/// else the first operation.
pub fn example_operation(ops: &[Operation]) -> Option<&Operation> {
    ops.iter().find(|o| o.method == "GET" && !o.path.contains('{')).or_else(|| ops.first())
}

/// `await <api>.request('GET <path>')` for the first API's example
/// operation, for examples.
fn example(apis: &[LoadedApi]) -> Option<String> {
    let api = apis.first()?;
    if let Some(g) = &api.graphql {
        let (doc, _) = g.schema.example_query()?;
        return Some(format!("`await {}.graphql({})`", api.name, serde_json::Value::String(doc)));
    }
    let op = example_operation(&api.spec.summary.operations)?;
    Some(format!("`await {}.request('{} {}')`", api.name, op.method, op.path))
}

/// Whether the code has a static `import` or an `export` (no modules here).
fn uses_modules(code: &str) -> bool {
    code.lines().map(str::trim_start).any(|l| {
        l.strip_prefix("import").is_some_and(|r| r.starts_with([' ', '{', '*', '"', '\''])) || l.starts_with("export ")
    })
}

fn clients(apis: &[LoadedApi], servers: bool) -> String {
    let mut names: Vec<String> = apis.iter().map(|a| format!("`{}`", a.name)).collect();
    if servers {
        names.push("`codemode` (MCP tools)".into());
    }
    names.join(", ")
}

fn modules_hint(apis: &[LoadedApi], servers: bool) -> String {
    format!(
        "there are no modules to load: everything is already a global — the clients ({}), `console`, `progress(message, fraction?)` — plus the JavaScript built-ins",
        clients(apis, servers)
    )
}

/// Adds the hint to an error of `tool`'s `code` that has one: a
/// `ReferenceError` for a global the sandbox leaves out or that belongs to
/// the other tool, a `SyntaxError` from `import`/`export`.
pub fn teach(outcome: &mut Outcome, tool: ToolKind, code: &str, apis: &[LoadedApi], servers: bool) {
    let Err(e) = &mut outcome.result else { return };
    if e.kind == ErrorKind::Syntax && uses_modules(code) {
        e.message = format!(
            "{} — `import` and `export` cannot be used: {}; call them directly, without `new` or setup",
            e.message,
            modules_hint(apis, servers)
        );
        return;
    }
    if e.kind != ErrorKind::Runtime || e.name != "ReferenceError" {
        return;
    }
    let Some(name) = e.message.strip_suffix(" is not defined") else { return };
    let name = name.trim();
    let call = example(apis).unwrap_or_else(|| "`await codemode.<server>_<tool>(args)`".into());
    let hint = match (tool, missing(name)) {
        (ToolKind::Execute, None) if name == "schema" || name == "schemas" => format!(
            "the schema is only in `search` (as `{name}`); `execute` has the clients ({}): look the field up with `search`, then call it here, e.g. {call}",
            clients(apis, servers)
        ),
        (ToolKind::Execute, None) if name == "spec" || name == "specs" => format!(
            "the spec is only in `search` (as `{name}`); `execute` has the clients ({}): look the operation up with `search`, then call it here, e.g. {call}",
            clients(apis, servers)
        ),
        (ToolKind::Search, None) if apis.iter().any(|a| a.name == name) => format!(
            "`{name}` is a client of `execute`: `search` only reads the spec (`spec`, `specs`), and requests are made in `execute`, e.g. {call}"
        ),
        (_, Some(what)) => hint_for(what, apis, servers, &call),
        (_, None) => return,
    };
    e.message = format!("{name} is not defined — {hint}");
}

fn hint_for(what: Missing, apis: &[LoadedApi], servers: bool, call: &str) -> String {
    match what {
        Missing::Network => format!(
            "there is no network access from the code: every request goes through a client the host provides ({}), e.g. {call}; it resolves to {{status, headers, data}}",
            clients(apis, servers)
        ),
        Missing::Modules => modules_hint(apis, servers),
        Missing::Environment => {
            "there is no process or environment here: credentials stay in the host, which adds them to each request you make through a client"
                .to_string()
        }
        Missing::Bytes => "there is no Buffer (it is Node's): use `new TextEncoder().encode(text)` / `new TextDecoder().decode(bytes)` for UTF-8, and `atob`/`btoa` or `bytes.toBase64()` / `Uint8Array.fromBase64(s)` for base64"
            .to_string(),
        Missing::Immediate => format!(
            "there is no setImmediate (it is Node's): use `setTimeout(fn, 0)` or `queueMicrotask(fn)` — or better, await the requests themselves (e.g. {call}) and run independent ones at once with `await Promise.all([...])`"
        ),
        Missing::Intl => "there is no `Intl` here (and `toLocaleString` ignores locales and options): format by hand — `n.toFixed(2)`, `String(n).padStart(6)`, thousands separators with `String(n).replace(/\\B(?=(\\d{3})+(?!\\d))/g, ',')`, dates with `d.toISOString().slice(0, 10)`"
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference_error(name: &str) -> Outcome {
        Outcome {
            result: Err(codemode_sandbox::ScriptError {
                kind: ErrorKind::Runtime,
                name: "ReferenceError".into(),
                message: format!("{name} is not defined"),
                line: Some(1),
                column: Some(13),
                stack: None,
                details: None,
            }),
            console: vec![],
            console_dropped: 0,
            host_calls: 0,
            elapsed: std::time::Duration::ZERO,
        }
    }

    fn message(o: &Outcome) -> &str {
        &o.result.as_ref().unwrap_err().message
    }

    fn bookshelf() -> Vec<LoadedApi> {
        let spec = codemode_spec::load_from_value(
            "bookshelf.json",
            serde_json::json!({
                "openapi": "3.0.0",
                "info": {"title": "Bookshelf", "version": "1"},
                "servers": [{"url": "http://127.0.0.1:1/"}],
                "paths": {"/books/{id}": {"get": {}}, "/books": {"get": {}, "post": {}}},
            }),
        );
        // The binary installs the TLS provider in `main`; a test builds the client itself.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = codemode_upstream::UpstreamConfig::new("bookshelf", "http://127.0.0.1:1/".parse().unwrap());
        let upstream = codemode_upstream::Upstream::new(config).unwrap();
        vec![LoadedApi {
            name: "bookshelf".into(),
            spec: std::sync::Arc::new(spec),
            graphql: None,
            upstream,
            allow_writes: false,
            signin: false,
        }]
    }

    fn syntax_error(message: &str) -> Outcome {
        let mut o = reference_error("x");
        let e = o.result.as_mut().unwrap_err();
        (e.kind, e.name, e.message) = (ErrorKind::Syntax, "SyntaxError".into(), message.into());
        o
    }

    #[test]
    fn missing_globals_name_what_to_use_instead() {
        for (name, needle) in [
            ("fetch", "network access"),
            ("require", "no modules"),
            ("process", "credentials stay in the host"),
            ("setImmediate", "setTimeout(fn, 0)"),
            ("Buffer", "TextEncoder"),
            ("Intl", "format by hand"),
        ] {
            for tool in [ToolKind::Search, ToolKind::Execute] {
                let mut o = reference_error(name);
                teach(&mut o, tool, "", &[], true);
                let m = message(&o);
                assert!(m.starts_with(&format!("{name} is not defined — ")) && m.contains(needle), "{m}");
            }
        }
        // Without APIs the example is a portal call, never a made-up API.
        let mut o = reference_error("fetch");
        teach(&mut o, ToolKind::Execute, "", &[], true);
        assert!(message(&o).contains("codemode.<server>_<tool>") && !message(&o).contains("zones"), "{}", message(&o));
        // With one, the example is its own first plain GET.
        let mut o = reference_error("fetch");
        teach(&mut o, ToolKind::Execute, "", &bookshelf(), false);
        assert!(message(&o).contains("`await bookshelf.request('GET /books')`"), "{}", message(&o));
    }

    #[test]
    fn globals_of_the_other_tool_say_where_they_are() {
        let apis = bookshelf();
        let mut o = reference_error("spec");
        teach(&mut o, ToolKind::Execute, "", &apis, false);
        let m = message(&o);
        assert!(
            m.starts_with("spec is not defined — the spec is only in `search`") && m.contains("`bookshelf`"),
            "{m}"
        );
        let mut o = reference_error("bookshelf");
        teach(&mut o, ToolKind::Search, "", &apis, false);
        let m = message(&o);
        assert!(
            m.contains("`bookshelf` is a client of `execute`") && m.contains("bookshelf.request('GET /books')"),
            "{m}"
        );
        // In their own tool these names are not hinted (an API may be
        // called `spec`; a client missing from execute is another problem).
        for (name, tool) in [("spec", ToolKind::Search), ("bookshelf", ToolKind::Execute), ("shelf", ToolKind::Search)]
        {
            let mut o = reference_error(name);
            teach(&mut o, tool, "", &apis, false);
            assert_eq!(message(&o), format!("{name} is not defined"));
        }
    }

    #[test]
    fn imports_say_there_are_no_modules() {
        for code in [
            "import { Octokit } from \"@octokit/rest\";\nnew Octokit()",
            "  import axios from 'axios'",
            "import * as x from 'x'",
            "import 'polyfill'",
            "export default async () => 1",
        ] {
            let mut o = syntax_error("unexpected token");
            teach(&mut o, ToolKind::Execute, code, &bookshelf(), false);
            let m = message(&o);
            assert!(
                m.starts_with("unexpected token — `import` and `export` cannot be used") && m.contains("(`bookshelf`)"),
                "{m}"
            );
        }
        for code in ["const important = 1;\nimportant +", "await import('x')", "const x = {"] {
            let mut o = syntax_error("unexpected token");
            teach(&mut o, ToolKind::Execute, code, &[], false);
            assert_eq!(message(&o), "unexpected token", "{code}");
        }
    }

    #[test]
    fn other_errors_are_left_alone() {
        // setTimeout and friends exist now: no hint that says otherwise.
        for name in ["myHelper", "setTimeout", "setInterval", "queueMicrotask"] {
            let mut o = reference_error(name);
            teach(&mut o, ToolKind::Execute, "", &[], false);
            assert_eq!(message(&o), format!("{name} is not defined"));
        }
        let mut o = reference_error("myHelper");
        teach(&mut o, ToolKind::Execute, "", &[], false);
        assert_eq!(message(&o), "myHelper is not defined");
    }
}
