//! A QuickJS sandbox for model-written JavaScript.
//!
//! Two entry points, one per tool:
//! - [`SearchPool`] runs `search` code against resolved specs. Each worker
//!   thread owns one runtime in which the specs are built once, frozen, and
//!   shared with a fresh context per call.
//! - [`execute`] runs `execute` code in a fresh runtime per call, with client
//!   objects whose methods reach the host through [`Host`].
//!
//! The sandbox has no filesystem, environment, network, module loader or
//! timers: the only way out is a [`Host`] call, and everything that crosses
//! is JSON text checked on the host side. Every call is bounded in time
//! (interrupt handler plus a host-side deadline), memory, stack depth, host
//! calls and console output; see [`Limits`].

mod console;
mod engine;
mod execute;
pub mod normalize;
mod search;
mod spec_view;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use execute::{execute, Client, ExecuteEnv};
pub use search::{SearchCall, SearchPool, SearchSpec};

/// Limits for one call. Each, when hit, ends the call with a clear error.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Wall clock for the whole call, including awaited host calls.
    pub timeout: Duration,
    /// Memory the call may allocate (on top of a shared spec, for `search`).
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// A failure of the sandbox itself.
    Internal,
}

/// An error that ended the call, positioned in the model's own code.
#[derive(Clone, Debug, PartialEq)]
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

/// Synchronous host functions for `search` code (`codemode.tools()`,
/// `codemode.types(name?)`): `method` is `tools` or `types`, `args` the JSON
/// array of arguments. `Err` is thrown into the code as an `Error`.
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
}
