//! Errors that teach: a `ReferenceError` for a global the sandbox does not
//! have (`fetch`, `require`, `process`, `Buffer`, `setImmediate`…) gets the supported way
//! to do the same, with an example from the configured APIs — never a
//! hard-coded one. Applied to what a call returns, before it is rendered.

use codemode_sandbox::{ErrorKind, Outcome};

use crate::service::LoadedApi;

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
}

fn missing(name: &str) -> Option<Missing> {
    Some(match name {
        "fetch" | "XMLHttpRequest" | "WebSocket" | "axios" | "Request" | "Headers" => Missing::Network,
        "require" | "module" | "exports" | "__dirname" | "__filename" => Missing::Modules,
        "process" | "Deno" | "Bun" => Missing::Environment,
        "Buffer" => Missing::Bytes,
        "setImmediate" | "clearImmediate" => Missing::Immediate,
        _ => return None,
    })
}

/// `await <api>.request('GET <path>')` for the first API's first GET (or
/// first operation), for examples.
fn example(apis: &[LoadedApi]) -> Option<String> {
    let api = apis.first()?;
    let ops = &api.spec.summary.operations;
    let op = ops.iter().find(|o| o.method == "GET" && !o.path.contains('{')).or_else(|| ops.first())?;
    Some(format!("`await {}.request('{} {}')`", api.name, op.method, op.path))
}

fn clients(apis: &[LoadedApi], servers: bool) -> String {
    let mut names: Vec<String> = apis.iter().map(|a| format!("`{}`", a.name)).collect();
    if servers {
        names.push("`codemode` (MCP tools)".into());
    }
    names.join(", ")
}

/// Adds the hint to a `ReferenceError` for a global the sandbox leaves out.
pub fn teach(outcome: &mut Outcome, apis: &[LoadedApi], servers: bool) {
    let Err(e) = &mut outcome.result else { return };
    if e.kind != ErrorKind::Runtime || e.name != "ReferenceError" {
        return;
    }
    let Some(name) = e.message.strip_suffix(" is not defined") else { return };
    let Some(what) = missing(name.trim()) else { return };
    let call = example(apis).unwrap_or_else(|| "`await codemode.<server>_<tool>(args)`".into());
    let hint = match what {
        Missing::Network => format!(
            "there is no network access from the code: every request goes through a client the host provides ({}), e.g. {call}; it resolves to {{status, headers, data}}",
            clients(apis, servers)
        ),
        Missing::Modules => format!(
            "there are no modules to load: everything is already a global — the clients ({}), `console`, `progress(message, fraction?)` — plus the JavaScript built-ins",
            clients(apis, servers)
        ),
        Missing::Environment => {
            "there is no process or environment here: credentials stay in the host, which adds them to each request you make through a client"
                .to_string()
        }
        Missing::Bytes => "there is no Buffer (it is Node's): use `new TextEncoder().encode(text)` / `new TextDecoder().decode(bytes)` for UTF-8, and `atob`/`btoa` or `bytes.toBase64()` / `Uint8Array.fromBase64(s)` for base64"
            .to_string(),
        Missing::Immediate => format!(
            "there is no setImmediate (it is Node's): use `setTimeout(fn, 0)` or `queueMicrotask(fn)` — or better, await the requests themselves (e.g. {call}) and run independent ones at once with `await Promise.all([...])`"
        ),
    };
    e.message = format!("{name} is not defined — {hint}");
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

    #[test]
    fn missing_globals_name_what_to_use_instead() {
        for (name, needle) in [
            ("fetch", "network access"),
            ("require", "no modules"),
            ("process", "credentials stay in the host"),
            ("setImmediate", "setTimeout(fn, 0)"),
            ("Buffer", "TextEncoder"),
        ] {
            let mut o = reference_error(name);
            teach(&mut o, &[], true);
            let m = message(&o);
            assert!(m.starts_with(&format!("{name} is not defined — ")) && m.contains(needle), "{m}");
        }
        // Without APIs the example is a portal call, never a made-up API.
        let mut o = reference_error("fetch");
        teach(&mut o, &[], true);
        assert!(message(&o).contains("codemode.<server>_<tool>") && !message(&o).contains("zones"), "{}", message(&o));
    }

    #[test]
    fn other_errors_are_left_alone() {
        // setTimeout and friends exist now: no hint that says otherwise.
        for name in ["myHelper", "setTimeout", "setInterval", "queueMicrotask"] {
            let mut o = reference_error(name);
            teach(&mut o, &[], false);
            assert_eq!(message(&o), format!("{name} is not defined"));
        }
        let mut o = reference_error("myHelper");
        teach(&mut o, &[], false);
        assert_eq!(message(&o), "myHelper is not defined");
    }
}
