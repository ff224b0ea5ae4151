//! A QuickJS sandbox for model-written JavaScript.
//!
//! [`Sandbox`] runs both tools' code: `search` against resolved specs,
//! `execute` with client objects whose methods reach the host through
//! [`Host`]. Every call gets a QuickJS runtime of its own, so nothing one
//! call does survives into another: not a global, a prototype, an `Error`
//! hook or a queued job.
//!
//! Two walls stand around that runtime ([`Isolation`]):
//! - **Process** (the default on Linux): the JavaScript runs in a pool of
//!   pre-started worker processes that hold no credentials and no config,
//!   reach the host only through a pipe, drop privileges, and lock
//!   themselves down with seccomp-bpf and rlimits. The host kills a worker
//!   at its call's deadline, so every limit pre-empts whatever QuickJS is
//!   doing, and a QuickJS memory-safety bug is contained in a process with
//!   nothing in it.
//! - **In-process**: the same runtimes on host threads, for platforms
//!   without seccomp. Native work that never reaches QuickJS's interrupt
//!   handler (one huge `Array.prototype.join`) runs to its end there.
//!
//! The specs are packed once ([`codemode_spec::packed`]) into read-only
//! bytes every worker shares (a sealed memfd), and materialised lazily per
//! call: only what the code touches becomes a JavaScript object.
//!
//! The sandbox has no filesystem, environment, network or module loader:
//! the only way out is a [`Host`] call, and everything that crosses is JSON
//! text checked on the host side. It does have the web-standard globals
//! model code expects (`URL`, `URLSearchParams`, `TextEncoder`,
//! `TextDecoder`, `atob`/`btoa`, `structuredClone`, `crypto`, and timers
//! that fire within the call's deadline, never past it). Every call is bounded in time,
//! memory, stack depth, host calls and console output; see [`Limits`].
//! `execute` code may also report how far it is (`progress(message,
//! fraction?)`, bounded by [`progress`]), which reaches [`Host::progress`].

// `ScriptError` travels by value through a handful of internal functions,
// once per call; boxing it would add noise for no measurable gain.
#![allow(clippy::result_large_err)]

mod clock;
mod console;
mod engine;
mod inproc;
#[cfg(target_os = "linux")]
mod lockdown;
pub mod normalize;
#[cfg(target_os = "linux")]
mod pool;
pub mod progress;
mod runner;
mod sandbox;
mod spec_view;
mod timers;
mod web;
mod wire;
#[cfg(target_os = "linux")]
pub mod worker;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use clock::{Clock, Pause};
pub use progress::Report as ProgressReport;
pub use sandbox::{Isolation, Sandbox, SandboxConfig, SearchCall, SearchSpec, SpecGlobal, WorkerCommand};

/// A global object the code can call, e.g. `cloudflare` with `request`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Client {
    /// Global name (a JavaScript identifier).
    pub global: String,
    /// Method names; each becomes `global.method(...args)` → [`Host::call`].
    pub methods: Vec<String>,
}

/// The globals of an `execute` call.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ExecuteEnv {
    /// Client objects.
    pub clients: Vec<Client>,
    /// Extra names for clients: `(alias, global)`, e.g. `("api", "cloudflare")`.
    pub aliases: Vec<(String, String)>,
    /// Globals whose every property is a method (`codemode.<server>_<tool>`).
    pub dynamic_clients: Vec<String>,
}

/// Limits for one call. Each, when hit, ends the call with a clear error.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Limits {
    /// Wall clock for the whole call, including awaited host calls, but not
    /// the time it waits idle while its [`Clock`] is held (see
    /// [`Sandbox::execute_with_clock`]).
    pub timeout: Duration,
    /// Memory the call's runtime may allocate (the packed specs are not counted).
    pub memory_bytes: usize,
    /// JavaScript stack size.
    pub stack_bytes: usize,
    /// Console output kept, in bytes.
    pub console_bytes: usize,
    /// Host calls (upstream requests) per call.
    pub max_host_calls: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(30),
            memory_bytes: 64 * 1024 * 1024,
            stack_bytes: 512 * 1024,
            console_bytes: 16 * 1024,
            max_host_calls: 50,
        }
    }
}

/// The value the code's promise resolved to, as it crosses the boundary.
#[derive(Clone, Debug, PartialEq)]
pub enum JsValue {
    /// `undefined` (or a function, or nothing returned).
    Undefined,
    /// A string, passed through as is.
    String(String),
    /// Anything else, as `JSON.stringify` renders it.
    Json(serde_json::Value),
}

/// What kind of failure ended the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The code does not parse.
    Syntax,
    /// It threw (or rejected) at run time.
    Runtime,
    /// It ran past [`Limits::timeout`].
    Timeout,
    /// It allocated past [`Limits::memory_bytes`].
    OutOfMemory,
    /// It recursed past [`Limits::stack_bytes`].
    StackOverflow,
    /// It awaits a promise nothing can settle.
    NeverSettles,
    /// The client cancelled the call.
    Cancelled,
    /// A failure of the sandbox itself (including a worker process that died).
    Internal,
}

impl ErrorKind {
    /// A stable lower-case name (`syntax`, `runtime`, `timeout`,
    /// `out_of_memory`, `stack_overflow`, `never_settles`, `cancelled`,
    /// `internal`) for logs, audit records and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Syntax => "syntax",
            ErrorKind::Runtime => "runtime",
            ErrorKind::Timeout => "timeout",
            ErrorKind::OutOfMemory => "out_of_memory",
            ErrorKind::StackOverflow => "stack_overflow",
            ErrorKind::NeverSettles => "never_settles",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Internal => "internal",
        }
    }
}

/// An error that ended the call, positioned in the model's own code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScriptError {
    /// Classification.
    pub kind: ErrorKind,
    /// The JS error name (`TypeError`, `SyntaxError`, `UpstreamError`…).
    pub name: String,
    /// The message, written so a model can correct its code.
    pub message: String,
    /// 1-based line in the code as sent, when known.
    pub line: Option<u32>,
    /// 1-based column, when known.
    pub column: Option<u32>,
    /// The stack, with positions mapped to the code as sent.
    pub stack: Option<String>,
    /// Extra fields on the thrown error (`status`, `method`, `path`, `data`…).
    pub details: Option<serde_json::Value>,
}

impl ScriptError {
    pub(crate) fn new(kind: ErrorKind, name: &str, message: &str) -> Self {
        ScriptError {
            kind,
            name: name.into(),
            message: message.into(),
            line: None,
            column: None,
            stack: None,
            details: None,
        }
    }
}

/// What a call produced.
#[derive(Debug)]
pub struct Outcome {
    /// The result, or the error that ended the call.
    pub result: Result<JsValue, ScriptError>,
    /// Console lines, in order (capped).
    pub console: Vec<String>,
    /// Console lines dropped or cut by the cap.
    pub console_dropped: usize,
    /// Host calls made.
    pub host_calls: u32,
    /// Wall time of the call.
    pub elapsed: Duration,
}

/// A boxed future returned by [`Host::call`].
pub type HostFuture = Pin<Box<dyn Future<Output = Result<serde_json::Value, serde_json::Value>> + Send>>;

/// Synchronous host functions for `search` code (`codemode.find(query)`,
/// `codemode.tools()`, `codemode.status()`, `codemode.types(name?)`):
/// `method` is the function's name, `args` the JSON array of arguments. `Err` is thrown into the code as an `Error`.
pub trait SyncHost: Send + Sync + 'static {
    /// Performs one call.
    fn call(&self, method: &str, args: serde_json::Value) -> Result<serde_json::Value, serde_json::Value>;
}

/// The host side of client methods (`api.request(...)`).
///
/// `call` receives the client's global name, the method and the JSON array of
/// arguments as the code passed them. `Ok(v)` resolves the code's promise with
/// `v`; `Err(e)` rejects it with an `Error` carrying `e.message` and every
/// other field of `e`. Implementations must treat `args` as hostile.
pub trait Host: Send + Sync + 'static {
    /// Performs one call.
    fn call(&self, client: &str, method: &str, args: serde_json::Value) -> HostFuture;

    /// What the code reported with `progress(message, fraction?)`, already
    /// within the bounds of [`progress`] (rate, count, length). Must not
    /// block: it runs on the call's event loop. The default drops it.
    fn progress(&self, _report: ProgressReport) {}
}

/// Parses a result's JSON text on the host, with a clear error when it is
/// nested too deeply to be handled safely.
pub(crate) fn parse_result(raw: wire::RawValue) -> Result<JsValue, ScriptError> {
    match raw {
        wire::RawValue::Undefined => Ok(JsValue::Undefined),
        wire::RawValue::String(s) => Ok(JsValue::String(s)),
        wire::RawValue::Json(text) => serde_json::from_str(&text).map(JsValue::Json).map_err(|e| {
            if e.to_string().contains("recursion limit") {
                ScriptError::new(
                    ErrorKind::Runtime,
                    "RangeError",
                    "the result is nested more than 127 levels deep; return a flatter value (pick the fields you need, or return JSON.stringify(part) as a string)",
                )
            } else {
                ScriptError::new(ErrorKind::Internal, "InternalError", &format!("the result's JSON did not parse on the host: {e}"))
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_results_get_an_error_that_says_what_to_do() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let e = parse_result(wire::RawValue::Json(deep)).unwrap_err();
        assert!(e.message.contains("nested more than"), "{}", e.message);
        assert_eq!(parse_result(wire::RawValue::Json("[1]".into())).unwrap(), JsValue::Json(serde_json::json!([1])));
    }
}
