//! The QuickJS runtime and the event loop every call runs in.
//!
//! Every call gets a runtime of its own, dropped when the call ends: nothing
//! one call creates — globals, prototypes, `Error` hooks, queued jobs — can
//! exist in another call's runtime, by construction.
//!
//! Inside the runtime, limits are enforced twice more, so that no single
//! mechanism has to be perfect: QuickJS's memory and stack limits; its
//! interrupt handler, which stops running JavaScript once the deadline
//! passes or the call is cancelled; and the event loop below, which checks
//! the deadline between jobs and waits for host completions only until the
//! deadline — which moves later by the time it waits idle while the host's
//! [`crate::Clock`] is held (a human deciding), and by nothing else. Native
//! work that never reaches the interrupt handler (one huge
//! `Array.prototype.join`, say) is stopped by the process wall instead: the
//! host kills the worker process at the deadline (see `pool`).

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use codemode_typescript::ErrorKind as TsErrorKind;
use rquickjs::{qjs, Context, Ctx, FromJs, Function, Object, Runtime, Value};

use crate::console::Console;
use crate::normalize::{self, Form};
use crate::timers::{self, Timers};
use crate::wire::RawValue;
use crate::{ErrorKind, Limits, ScriptError};

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// The file name QuickJS gives the model's code in stack traces.
pub(crate) const CODE_FILE: &str = "code.js";

/// When the current call must stop, shared with the interrupt handler.
///
/// The deadline only moves later, and only by [`Stop::extend`]: the event
/// loop credits the time it waited idle for host completions while the
/// host's clock was held (see [`crate::Clock`]).
#[derive(Clone)]
pub(crate) struct Stop {
    /// Microseconds since `EPOCH`.
    deadline_us: Arc<AtomicU64>,
    cancelled: Arc<AtomicBool>,
}

impl Stop {
    pub(crate) fn new(deadline: Instant, cancelled: Arc<AtomicBool>) -> Stop {
        let us = deadline.saturating_duration_since(*EPOCH).as_micros() as u64;
        Stop { deadline_us: Arc::new(AtomicU64::new(us)), cancelled }
    }
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
    pub(crate) fn should_stop(&self) -> bool {
        self.is_cancelled() || (EPOCH.elapsed().as_micros() as u64) >= self.deadline_us.load(Ordering::Relaxed)
    }
    /// The current deadline.
    pub(crate) fn deadline(&self) -> Instant {
        *EPOCH + Duration::from_micros(self.deadline_us.load(Ordering::Relaxed))
    }
    /// Moves the deadline later by `by`.
    pub(crate) fn extend(&self, by: Duration) {
        if !by.is_zero() {
            self.deadline_us.fetch_add(by.as_micros() as u64, Ordering::Relaxed);
        }
    }
}

/// A fresh runtime and context for one call, with every limit set.
pub(crate) fn new_runtime(limits: &Limits, stop: &Stop) -> rquickjs::Result<(Runtime, Context)> {
    let rt = Runtime::new()?;
    rt.set_max_stack_size(limits.stack_bytes);
    rt.set_memory_limit(limits.memory_bytes);
    // The runtime dies with the call, and reference counting frees acyclic
    // garbage at once: collect cycles only once a quarter of the allowance
    // is in use, not every 256 KiB (a spec walk allocates many objects).
    rt.set_gc_threshold(limits.memory_bytes / 4);
    let handler_stop = stop.clone();
    rt.set_interrupt_handler(Some(Box::new(move || handler_stop.should_stop())));
    let ctx = Context::full(&rt)?;
    // `DOMException` (QuickJS's own atob/btoa throw it; ours do too): not
    // among the intrinsics `Context::full` adds.
    // SAFETY: a fresh, live context; the call only defines a class and a global.
    if ctx.with(|c| unsafe { qjs::JS_AddIntrinsicDOMException(c.as_raw().as_ptr()) }) != 0 {
        return Err(rquickjs::Error::Unknown);
    }
    Ok((rt, ctx))
}

/// A completion of a host call.
pub(crate) struct Completion {
    pub id: u64,
    /// `ok`: resolve the call's promise with `JSON.parse(json)`; otherwise
    /// reject it with an `Error` built from that object.
    pub ok: bool,
    pub json: String,
}

/// How the JavaScript thread reaches the host. In-process this is a channel
/// and the Tokio runtime; in a worker process it is the pipe to the host.
pub(crate) trait Bridge {
    /// Starts host call `id`; its completion arrives through [`Bridge::next`].
    fn start(&self, id: u64, client: &str, method: &str, args: String) -> Result<(), String>;
    /// The next completion, waiting at most until `until` (`Ok(None)`: none
    /// yet). It may also return `Ok(None)` early when the host's clock
    /// changes state, so that the caller can look again.
    fn next(&self, until: Instant) -> Result<Option<Completion>, String>;
    /// Whether the host's clock is held (the call waits for a human).
    fn held(&self) -> bool {
        false
    }
    /// Total time the host's clock has been held during this call, as far
    /// as this side knows; only its growth across a [`Bridge::next`] is
    /// used, and credited to the deadline (the JavaScript was idle then).
    fn held_total(&self) -> Duration {
        Duration::ZERO
    }
    /// A synchronous host call: `Ok(json)` or `Err(json)` of an error object.
    fn sync_call(&self, method: &str, args: String) -> Result<String, String>;
    /// Passes on a progress report the runner's gate admitted.
    fn progress(&self, report: crate::ProgressReport) -> Result<(), String>;
}

/// The JavaScript side of the host-call plumbing of one call.
pub(crate) struct HostLink {
    pub in_flight: Rc<Cell<usize>>,
    /// `complete(id, ok, json)` from `js/host.js`.
    pub complete: rquickjs::Persistent<Function<'static>>,
}

/// Everything one run needs besides the context.
pub(crate) struct RunSpec<'a> {
    pub code: &'a str,
    pub limits: &'a Limits,
    /// The deadline (`Stop::deadline`), extended while the clock is held.
    pub stop: Stop,
    /// Where the loop waits: for host completions, and for timers.
    pub bridge: Rc<dyn Bridge>,
    pub host: Option<HostLink>,
    pub timers: TimerLink,
}

/// The timers of one call: the queue and `fire(id)` from `js/timers.js`.
pub(crate) struct TimerLink {
    pub queue: Rc<RefCell<Timers>>,
    pub fire: rquickjs::Persistent<Function<'static>>,
}

/// Runs the model's code in `ctx` until its promise settles, the deadline
/// passes, or nothing can settle it any more.
pub(crate) fn run<'js>(ctx: &Ctx<'js>, spec: RunSpec<'_>) -> Result<RawValue, ScriptError> {
    let (code, fence_lines) = normalize::strip_fence(spec.code);
    let (value, line_fix) = start(ctx, code, fence_lines, &spec)?;
    let promise = match value.as_promise() {
        Some(p) => p.clone(),
        None => return to_result(ctx, value, &line_fix, &spec),
    };
    let complete: Option<Function<'js>> = match &spec.host {
        Some(h) => {
            Some(h.complete.clone().restore(ctx).map_err(|e| internal(format!("sandbox prelude missing: {e}")))?)
        }
        None => None,
    };
    let fire: Function<'js> =
        spec.timers.fire.clone().restore(ctx).map_err(|e| internal(format!("sandbox prelude missing: {e}")))?;
    loop {
        // Drain the job queue, checking the deadline between jobs: a job that
        // re-queues itself (or a fork bomb of them) never returns control
        // otherwise. The interrupt handler bounds each single job.
        while ctx.execute_pending_job() {
            if spec.stop.should_stop() {
                return Err(stopped(&spec));
            }
        }
        if spec.stop.should_stop() {
            return Err(stopped(&spec));
        }
        match promise.state() {
            rquickjs::promise::PromiseState::Resolved => {
                let v: Value = promise
                    .result::<Value>()
                    .expect("settled")
                    .map_err(|e| caught_or_stopped(ctx, e, &line_fix, &spec))?;
                return to_result(ctx, v, &line_fix, &spec);
            }
            rquickjs::promise::PromiseState::Rejected => {
                let err = promise.result::<Value>().expect("settled").expect_err("rejected");
                return Err(caught_or_stopped(ctx, err, &line_fix, &spec));
            }
            rquickjs::promise::PromiseState::Pending => {}
        }
        // A due timer runs once the job queue is empty, then its jobs (above).
        let due = spec.timers.queue.borrow_mut().pop_due(Instant::now());
        if let Some(id) = due {
            fire.call::<_, ()>((id,)).map_err(|e| caught_or_stopped(ctx, e, &line_fix, &spec))?;
            continue;
        }
        let in_flight = spec.host.as_ref().map_or(0, |h| h.in_flight.get());
        let next_timer = spec.timers.queue.borrow_mut().next_due();
        match next_timer {
            None if in_flight == 0 => return Err(never_settles()),
            // Only a timer can settle it, and it would fire too late: end
            // now rather than sleep into the time limit.
            Some(due) if in_flight == 0 && due.at > spec.stop.deadline() => {
                return Err(timers::past_deadline(due, spec.limits.timeout));
            }
            _ => {}
        }
        // Wait for a completion or the next timer, in slices (cancellation
        // is seen between them). While the host's clock is held the wait is
        // not bounded by the deadline, and whatever part of it was held is
        // added to the deadline: idle time waiting for a human is not spent.
        // Held time in which JavaScript runs (above) is never credited.
        // Behind the process wall the wait is a poll(2) on the host pipe,
        // which the seccomp filter allows.
        let slice = Instant::now() + Duration::from_millis(100);
        let mut until = if spec.bridge.held() { slice } else { spec.stop.deadline().min(slice) };
        if let Some(due) = next_timer {
            until = until.min(due.at);
        }
        let held_before = spec.bridge.held_total();
        let next = spec.bridge.next(until);
        spec.stop.extend(spec.bridge.held_total().saturating_sub(held_before));
        match next {
            Ok(Some(c)) => {
                let (Some(host), Some(f)) = (&spec.host, &complete) else {
                    return Err(internal("a host completion arrived for a call without host calls".into()));
                };
                host.in_flight.set(host.in_flight.get().saturating_sub(1));
                if let Err(e) = f.call::<_, ()>((c.id as f64, c.ok, c.json)) {
                    return Err(caught_or_stopped(ctx, e, &line_fix, &spec));
                }
            }
            Ok(None) => {
                if spec.stop.should_stop() {
                    return Err(stopped(&spec));
                }
            }
            Err(e) => return Err(internal(format!("the host link failed: {e}"))),
        }
    }
}

/// How to map QuickJS line/column numbers back to the model's code.
#[derive(Clone, Copy)]
pub(crate) struct LineFix {
    /// Lines the wrapper added (subtract).
    wrapper_lines: u32,
    /// Lines the fence strip removed (add back).
    fence_lines: u32,
    /// Columns the wrapper added on the first line (subtract there).
    first_line_cols: u32,
}

impl LineFix {
    fn apply(&self, line: u32, column: u32) -> (u32, u32) {
        let col = if line == 1 { column.saturating_sub(self.first_line_cols).max(1) } else { column };
        let line = line.saturating_sub(self.wrapper_lines).max(1) + self.fence_lines;
        (line, col)
    }
}

/// Compiles `source` without running it. Returns the function bytecode, or
/// the exception (a `SyntaxError`) as `Err`.
fn compile(ctx: &Ctx<'_>, source: &str, flags: u32) -> Result<qjs::JSValue, rquickjs::Error> {
    let src = CString::new(source)?;
    let file = CString::new(CODE_FILE)?;
    // SAFETY: `ctx` is a live context; `src` is NUL-terminated and `len`
    // excludes the NUL, as JS_Eval requires. The returned value is owned by
    // the caller, who either runs it (JS_EvalFunction takes ownership) or
    // frees it.
    let v = unsafe {
        qjs::JS_Eval(
            ctx.as_raw().as_ptr(),
            src.as_ptr(),
            source.len() as _,
            file.as_ptr(),
            (flags | qjs::JS_EVAL_FLAG_COMPILE_ONLY) as i32,
        )
    };
    if unsafe { qjs::JS_IsException(v) } {
        return Err(rquickjs::Error::Exception);
    }
    Ok(v)
}

/// Runs bytecode from [`compile`] (taking ownership of it).
fn run_compiled<'js>(ctx: &Ctx<'js>, fun: qjs::JSValue) -> Result<Value<'js>, rquickjs::Error> {
    // SAFETY: `fun` is an owned bytecode value of this context; JS_EvalFunction
    // consumes it and returns an owned value, which `Value::from_raw` adopts.
    let v = unsafe { qjs::JS_EvalFunction(ctx.as_raw().as_ptr(), fun) };
    if unsafe { qjs::JS_IsException(v) } {
        return Err(rquickjs::Error::Exception);
    }
    Ok(unsafe { Value::from_raw(ctx.clone(), v) })
}

/// Decides the code's form by compiling each reading in turn — nothing runs
/// until one compiles — then runs that one reading, once. A `SyntaxError`
/// thrown at run time (from `eval`, say) is an ordinary runtime error: the
/// code is never run a second time.
fn start<'js>(
    ctx: &Ctx<'js>,
    code: &str,
    fence_lines: u32,
    spec: &RunSpec<'_>,
) -> Result<(Value<'js>, LineFix), ScriptError> {
    if code.contains('\0') {
        return Err(ScriptError::new(
            ErrorKind::Syntax,
            "SyntaxError",
            "the code contains a NUL character; remove it (write \\0 inside a string if you need one)",
        ));
    }
    // TypeScript in, JavaScript out, byte for byte where the model wrote it
    // (so `LineFix` holds as it is). What oxc cannot parse may still be
    // JavaScript QuickJS accepts: it is tried as it is, and oxc's error is
    // the one shown only if no reading compiles.
    let (js, ts_error) = match codemode_typescript::to_javascript(code) {
        Ok(js) => (js, None),
        Err(e) if e.kind == TsErrorKind::Unsupported => return Err(typescript_error(&e, fence_lines, "")),
        Err(e) => (Cow::Borrowed(code), Some(e)),
    };
    let mut syntax_errors = Vec::new();
    let mut chosen = None;
    for cand in normalize::candidates(&js) {
        let fix = LineFix {
            wrapper_lines: cand.line_offset,
            fence_lines,
            first_line_cols: if cand.form == Form::Expression { 1 } else { 0 },
        };
        let flags = qjs::JS_EVAL_TYPE_GLOBAL | if cand.form == Form::Script { qjs::JS_EVAL_FLAG_ASYNC } else { 0 };
        match compile(ctx, &cand.source, flags) {
            Ok(bytecode) => {
                chosen = Some((cand.form, bytecode, fix));
                break;
            }
            Err(e) => {
                let err = caught(ctx, e, &fix);
                if spec.stop.should_stop() {
                    return Err(stopped(spec));
                }
                if err.kind != ErrorKind::Syntax {
                    return Err(err);
                }
                syntax_errors.push((cand.form, err));
            }
        }
    }
    let Some((form, bytecode, fix)) = chosen else {
        if let Some(e) = ts_error {
            return Err(typescript_error(&e, fence_lines, READINGS));
        }
        let intended = normalize::intended_form(code);
        let pick = syntax_errors.iter().position(|(f, _)| *f == intended).unwrap_or(0);
        let (_, mut err) = syntax_errors.swap_remove(pick);
        err.message = format!("{} ({READINGS})", err.message);
        return Err(err);
    };
    let v = run_compiled(ctx, bytecode).map_err(|e| caught_or_stopped(ctx, e, &fix, spec))?;
    let v = match form {
        Form::Script => {
            // With top-level await QuickJS resolves to `{value}`: unwrap it.
            // A completion value that is a function (`async () => {…};`, or
            // helpers declared before the arrow) is called, as the
            // expression reading calls its function: in a job of this same
            // runtime, under the same deadline and limits.
            let unwrap: Function = eval_prelude(ctx, SCRIPT_RESULT).map_err(|e| internal(format!("{e}")))?;
            unwrap.call::<_, Value>((v,)).map_err(|e| caught_or_stopped(ctx, e, &fix, spec))?
        }
        Form::Expression | Form::Body => match v.as_function() {
            Some(f) => f.call::<_, Value>(()).map_err(|e| caught_or_stopped(ctx, e, &fix, spec))?,
            None => v,
        },
    };
    Ok((v, fix))
}

/// What the code may be, said after a syntax error.
const READINGS: &str =
    "the code must be an async arrow function such as `async () => { ... }`, an expression, or statements ending in `return`";

/// A TypeScript error as a `SyntaxError` at its place in the model's code,
/// saying what is accepted (`readings`, when the code did not parse at all).
fn typescript_error(e: &codemode_typescript::Error, fence_lines: u32, readings: &str) -> ScriptError {
    let also = if readings.is_empty() { String::new() } else { format!("{readings}; ") };
    let mut err = ScriptError::new(
        ErrorKind::Syntax,
        "SyntaxError",
        &format!("{} ({also}TypeScript is accepted: type-only syntax is removed, not checked)", e.message),
    );
    err.line = Some(e.line + fence_lines);
    err.column = Some(e.column);
    err
}

/// Turns the promise of a script's completion record into the value the
/// code means: `{value}` unwrapped, and a function called with no arguments.
const SCRIPT_RESULT: &str = "(p) => Promise.resolve(p).then((r) => { const v = (r === null || typeof r !== 'object') ? r : r.value; return typeof v === 'function' ? v() : v; })";

/// The result as it crosses the boundary: strings as they are, everything
/// else as `JSON.stringify` text (parsed, with its depth checked, by
/// [`crate::parse_result`] on the host), with Maps and Sets converted
/// (`js/result.js`).
fn to_result<'js>(ctx: &Ctx<'js>, v: Value<'js>, fix: &LineFix, spec: &RunSpec<'_>) -> Result<RawValue, ScriptError> {
    if v.is_undefined() {
        return Ok(RawValue::Undefined);
    }
    if let Some(s) = v.as_string() {
        return s.to_string().map(RawValue::String).map_err(|e| caught_or_stopped(ctx, e, fix, spec));
    }
    let replacer = eval_prelude::<Function>(ctx, include_str!("../js/result.js"))
        .and_then(|make| make.call::<_, Function>(()))
        .map_err(|e| caught_or_stopped(ctx, e, fix, spec))?;
    let json = ctx.json_stringify_replacer(v, replacer).map_err(|e| {
        if spec.stop.should_stop() {
            return stopped(spec);
        }
        let mut err = caught(ctx, e, fix);
        if spec.stop.should_stop() {
            return stopped(spec);
        }
        err.message = format!("the result could not be turned into JSON: {}", err.message);
        err
    })?;
    // `toJSON` or a getter may have queued jobs while the result was turned
    // into JSON; they die with this call's runtime, unrun.
    match json {
        None => Ok(RawValue::Undefined), // functions, symbols
        Some(s) => s.to_string().map(RawValue::Json).map_err(|e| caught(ctx, e, fix)),
    }
}

fn caught_or_stopped(ctx: &Ctx<'_>, e: rquickjs::Error, fix: &LineFix, spec: &RunSpec<'_>) -> ScriptError {
    let err = caught(ctx, e, fix);
    if err.kind == ErrorKind::Timeout || spec.stop.should_stop() {
        return stopped(spec);
    }
    err
}

pub(crate) fn stopped(spec: &RunSpec<'_>) -> ScriptError {
    if spec.stop.is_cancelled() {
        ScriptError::new(ErrorKind::Cancelled, "Cancelled", "the call was cancelled by the client")
    } else {
        timeout_error(spec.limits.timeout)
    }
}

/// The error for a call stopped at its time limit (also used by the host
/// when it has to kill a worker).
pub(crate) fn timeout_error(limit: Duration) -> ScriptError {
    ScriptError::new(
        ErrorKind::Timeout,
        "TimeoutError",
        &format!(
            "the code ran past its time limit of {} and was stopped; make it do less (filter earlier, fewer requests, no busy loops, no huge strings or arrays) or split it into several calls",
            human_duration(limit)
        ),
    )
}

pub(crate) fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.rem_euclid(1000) == 0 {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

fn never_settles() -> ScriptError {
    ScriptError::new(
        ErrorKind::NeverSettles,
        "NeverSettlesError",
        "the code's promise can never settle: it awaits something that nothing will resolve (no request is in flight). Make sure every promise you await is resolved or rejected",
    )
}

pub(crate) fn internal(message: String) -> ScriptError {
    ScriptError::new(ErrorKind::Internal, "InternalError", &message)
}

const OUT_OF_MEMORY: &str = "the code (or turning its result into JSON) needed more memory than the limit allows; return less: filter, select fields, paginate";

/// Turns a caught rquickjs error (usually a thrown JS value) into a
/// [`ScriptError`] with positions in the model's own code.
pub(crate) fn caught<'js>(ctx: &Ctx<'js>, e: rquickjs::Error, fix: &LineFix) -> ScriptError {
    let value = match e {
        rquickjs::Error::Exception => ctx.catch(),
        // QuickJS reports allocation failures it cannot even build an
        // exception for this way.
        rquickjs::Error::Unknown => return ScriptError::new(ErrorKind::OutOfMemory, "InternalError", OUT_OF_MEMORY),
        other => return internal(other.to_string()),
    };
    if value.is_null() {
        // QuickJS throws `null` when it runs out of memory while building
        // the out-of-memory error itself.
        return ScriptError::new(ErrorKind::OutOfMemory, "InternalError", OUT_OF_MEMORY);
    }
    let Some(obj) = value.as_object().cloned() else {
        return thrown_non_error(ctx, value);
    };
    let get = |k: &str| obj.get::<_, Option<rquickjs::Coerced<String>>>(k).ok().flatten().map(|c| c.0);
    // Reading these may run the code's getters; the interrupt handler still
    // bounds them, and callers report a call stopped meanwhile as stopped.
    let name = get("name").unwrap_or_else(|| "Error".into());
    let message = get("message").unwrap_or_default();
    let stack = get("stack");
    if message.is_empty() && stack.is_none() && !obj.is_error() {
        return thrown_non_error(ctx, value);
    }
    let kind = classify(&name, &message);
    let mut err = ScriptError::new(kind, &name, &message);
    if let Some((line, col)) = stack.as_deref().and_then(position_in_code) {
        let (l, c) = fix.apply(line, col);
        err.line = Some(l);
        err.column = Some(c);
    }
    err.stack = stack.map(|s| rewrite_stack(&s, fix));
    err.details = extra_fields(ctx, &obj);
    match kind {
        ErrorKind::OutOfMemory => {
            err.message = "the code used more memory than its limit allows; keep less in memory (filter or map as you go, avoid huge strings and arrays)".into();
        }
        ErrorKind::StackOverflow => {
            err.message = format!("{message}: recursion is too deep; use a loop or a shallower recursion");
        }
        _ => {}
    }
    err
}

/// `throw "text"`, `throw 42n`, `throw {code: 1}`, `throw new Proxy(...)`:
/// describe the value without running any of its code (no getters, no
/// `toString`), so a hostile value cannot act while we describe it.
fn thrown_non_error<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> ScriptError {
    let shown = if let Some(s) = value.as_string() {
        let s = s.to_string().unwrap_or_default();
        let cut: String = s.chars().take(500).collect();
        serde_json::to_string(&cut).unwrap_or_default()
    } else if value.is_bool() || value.is_number() {
        // SAFETY-free: primitives stringify without user code.
        ctx.json_stringify(value.clone()).ok().flatten().and_then(|s| s.to_string().ok()).unwrap_or_default()
    } else if value.is_big_int() {
        // ToString of a BigInt primitive is an abstract operation: it does not
        // consult the (model-controlled) prototype.
        let digits = rquickjs::Coerced::<String>::from_js(ctx, value.clone()).map(|c| c.0).unwrap_or_default();
        if digits.len() > 60 {
            format!("a BigInt of {} digits ({}…n)", digits.len(), &digits[..20])
        } else {
            format!("{digits}n")
        }
    } else if value.is_undefined() {
        "undefined".into()
    } else if value.is_symbol() {
        "a Symbol".into()
    } else if value.is_function() {
        "a function".into()
    } else if value.is_object() {
        "an object that is not an Error (no message or stack)".into()
    } else {
        format!("a value of type {}", value.type_name())
    };
    ScriptError::new(
        ErrorKind::Runtime,
        "Error",
        &format!("uncaught value thrown: {shown}; throw an Error (`throw new Error(\"what went wrong\")`) so the message and position reach you"),
    )
}

fn classify(name: &str, message: &str) -> ErrorKind {
    if name == "SyntaxError" {
        ErrorKind::Syntax
    } else if message.contains("out of memory") {
        ErrorKind::OutOfMemory
    } else if message.contains("stack overflow") || message.contains("Maximum call stack size exceeded") {
        ErrorKind::StackOverflow
    } else if message == "interrupted" {
        ErrorKind::Timeout
    } else {
        ErrorKind::Runtime
    }
}

/// Own enumerable fields beyond name/message/stack (for example `status`,
/// `method`, `path`, `data` on an upstream error), as JSON.
fn extra_fields<'js>(ctx: &Ctx<'js>, obj: &Object<'js>) -> Option<serde_json::Value> {
    let mut map = serde_json::Map::new();
    for key in obj.keys::<String>().flatten().take(64) {
        if matches!(key.as_str(), "name" | "message" | "stack") {
            continue;
        }
        let Ok(v) = obj.get::<_, Value>(&*key) else {
            continue;
        };
        let json = ctx.json_stringify(v).ok().flatten().and_then(|s| s.to_string().ok());
        if let Some(parsed) = json.filter(|s| s.len() <= 64 * 1024).and_then(|s| serde_json::from_str(&s).ok()) {
            map.insert(key, parsed);
        }
    }
    (!map.is_empty()).then_some(serde_json::Value::Object(map))
}

/// The first `code.js:LINE:COL` in a stack trace.
fn position_in_code(stack: &str) -> Option<(u32, u32)> {
    let i = stack.find("code.js:")?;
    let rest = &stack[i + CODE_FILE.len() + 1..];
    let mut parts = rest.splitn(3, |c: char| !c.is_ascii_digit());
    let line = parts.next()?.parse().ok()?;
    let col = parts.next()?.parse().ok()?;
    Some((line, col))
}

/// Maps every `code.js:L:C` in a stack to the model's positions and drops
/// frames from our own prelude.
fn rewrite_stack(stack: &str, fix: &LineFix) -> String {
    stack
        .lines()
        .filter(|l| !l.contains("<prelude>"))
        .take(50)
        .map(|l| match (l.find("code.js:"), position_in_code(l)) {
            (Some(i), Some((line, col))) => {
                let (nl, nc) = fix.apply(line, col);
                let end = l[i..].find(')').map(|e| i + e).unwrap_or(l.len());
                format!("{}line {nl}, column {nc}{}", &l[..i], &l[end..])
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Evaluates one of our own scripts (preludes); errors here are bugs.
///
/// Each prelude is compiled once per thread and kept as QuickJS bytecode;
/// later calls read the bytecode into their fresh runtime instead of parsing
/// the source again (parsing was a third of the cost of an empty `search`).
/// The bytecode is ours, made in this process: never model input.
pub(crate) fn eval_prelude<'js, T: rquickjs::FromJs<'js>>(ctx: &Ctx<'js>, source: &'static str) -> rquickjs::Result<T> {
    thread_local! {
        static BYTECODE: RefCell<std::collections::HashMap<usize, Rc<[u8]>>> = RefCell::default();
    }
    let key = source.as_ptr() as usize;
    let cached = BYTECODE.with(|b| b.borrow().get(&key).cloned());
    let bytes = match cached {
        Some(b) => b,
        None => {
            let b: Rc<[u8]> = compile_prelude(ctx, source)?.into();
            BYTECODE.with(|c| c.borrow_mut().insert(key, b.clone()));
            b
        }
    };
    // SAFETY: `bytes` came from JS_WriteObject of a function compiled by
    // `compile_prelude` in this process; JS_ReadObject returns an owned value
    // (or an exception) that JS_EvalFunction consumes.
    let fun = unsafe {
        qjs::JS_ReadObject(ctx.as_raw().as_ptr(), bytes.as_ptr(), bytes.len() as _, qjs::JS_READ_OBJ_BYTECODE as i32)
    };
    if unsafe { qjs::JS_IsException(fun) } {
        return Err(rquickjs::Error::Exception);
    }
    let value = run_compiled(ctx, fun)?;
    T::from_js(ctx, value)
}

/// Compiles a prelude (strict, global) and serialises its bytecode.
fn compile_prelude(ctx: &Ctx<'_>, source: &str) -> rquickjs::Result<Vec<u8>> {
    let src = CString::new(source)?;
    let file = CString::new("<prelude>")?;
    // SAFETY: as in `compile`; the bytecode value is freed after writing.
    unsafe {
        let raw = ctx.as_raw().as_ptr();
        let fun = qjs::JS_Eval(
            raw,
            src.as_ptr(),
            source.len() as _,
            file.as_ptr(),
            (qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_STRICT | qjs::JS_EVAL_FLAG_COMPILE_ONLY) as i32,
        );
        if qjs::JS_IsException(fun) {
            return Err(rquickjs::Error::Exception);
        }
        let mut len: qjs::size_t = 0;
        let buf = qjs::JS_WriteObject(raw, &mut len, fun, qjs::JS_WRITE_OBJ_BYTECODE as i32);
        qjs::JS_FreeValue(raw, fun);
        if buf.is_null() {
            return Err(rquickjs::Error::Unknown);
        }
        let out = std::slice::from_raw_parts(buf, len as usize).to_vec();
        qjs::js_free(raw, buf.cast());
        Ok(out)
    }
}

/// Installs `console` (log/info/warn/error/debug) writing to `console`.
pub(crate) fn install_console<'js>(ctx: &Ctx<'js>, console: Rc<RefCell<Console>>) -> rquickjs::Result<()> {
    let sink = Function::new(ctx.clone(), move |level: String, text: String| {
        console.borrow_mut().push(&level, &text);
    })?;
    let make: Function = eval_prelude(ctx, include_str!("../js/console.js"))?;
    let console_obj: Object = make.call((sink,))?;
    ctx.globals().set("console", console_obj)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_read_from_stacks() {
        assert_eq!(position_in_code("    at f (code.js:3:11)\n"), Some((3, 11)));
        assert_eq!(position_in_code("    at code.js:1:5"), Some((1, 5)));
        assert_eq!(position_in_code("    at <prelude>:1:5"), None);
    }

    #[test]
    fn line_fix_maps_back_to_the_models_code() {
        let fix = LineFix { wrapper_lines: 1, fence_lines: 1, first_line_cols: 0 };
        assert_eq!(fix.apply(3, 7), (3, 7));
        let fix = LineFix { wrapper_lines: 0, fence_lines: 0, first_line_cols: 1 };
        assert_eq!(fix.apply(1, 7), (1, 6));
        assert_eq!(fix.apply(2, 7), (2, 7));
    }

    #[test]
    fn the_deadline_only_moves_by_what_is_credited() {
        let stop = Stop::new(Instant::now() + Duration::from_millis(30), Arc::new(AtomicBool::new(false)));
        let first = stop.deadline();
        assert!(!stop.should_stop());
        stop.extend(Duration::ZERO);
        assert_eq!(stop.deadline(), first);
        std::thread::sleep(Duration::from_millis(40));
        assert!(stop.should_stop());
        stop.extend(Duration::from_millis(200));
        assert!(!stop.should_stop(), "an extended deadline lets the call go on");
        let moved = stop.deadline() - first;
        assert!(moved >= Duration::from_millis(199) && moved <= Duration::from_millis(201), "{moved:?}");
        let seen_by_the_handler = stop.clone();
        assert_eq!(seen_by_the_handler.deadline(), stop.deadline());
    }

    /// A bridge with no host behind it: `search` without a catalog.
    struct NoHost;

    impl Bridge for NoHost {
        fn start(&self, _: u64, _: &str, _: &str, _: String) -> Result<(), String> {
            Err("no host in this test".into())
        }
        fn next(&self, until: Instant) -> Result<Option<Completion>, String> {
            std::thread::sleep(until.saturating_duration_since(Instant::now()));
            Ok(None)
        }
        fn sync_call(&self, _: &str, _: String) -> Result<String, String> {
            Err("{\"message\": \"no host in this test\"}".into())
        }
        fn progress(&self, _: crate::ProgressReport) -> Result<(), String> {
            Ok(())
        }
    }

    /// Runs `code` without host calls (as `search` does), within `timeout`.
    fn run_code(code: &str, timeout: Duration) -> Result<RawValue, ScriptError> {
        let limits = Limits { timeout, ..Limits::default() };
        let stop = Stop::new(Instant::now() + timeout, Arc::new(AtomicBool::new(false)));
        let (_rt, ctx) = new_runtime(&limits, &stop).unwrap();
        ctx.with(|ctx| {
            let timers = crate::runner::install_standard(&ctx).unwrap();
            run(
                &ctx,
                RunSpec { code, limits: &limits, stop: stop.clone(), bridge: Rc::new(NoHost), host: None, timers },
            )
        })
    }

    fn json(code: &str) -> String {
        match run_code(code, Duration::from_secs(5)) {
            Ok(RawValue::Json(s)) => s,
            other => panic!("{code}: {other:?}"),
        }
    }

    #[test]
    fn a_script_whose_last_value_is_a_function_calls_it() {
        // A trailing `;` makes the arrow a script's last value.
        assert_eq!(json("async () => { const x = await Promise.resolve(41); return x + 1; };"), "42");
        // Helpers first, then the arrow to run.
        assert_eq!(json("const twice = (x) => x * 2;\nfunction one() { return 1 }\nasync () => twice(one())"), "2");
        // Top-level await with a plain last value is unchanged.
        assert_eq!(json("const v = await Promise.resolve([1]);\nv"), "[1]");
        // Errors thrown by the called function keep their position.
        let e = run_code("const f = 1;\nasync () => {\n  null.x;\n};", Duration::from_secs(5)).unwrap_err();
        assert_eq!((e.name.as_str(), e.line), ("TypeError", Some(3)), "{e:?}");
    }

    #[test]
    fn a_called_script_function_stays_within_the_deadline() {
        let started = Instant::now();
        for code in [
            "async () => { for (;;) {} };",
            "const spin = () => { for (;;) {} };\nspin",
            "async () => { while (true) await null; };",
        ] {
            let e = run_code(code, Duration::from_millis(200)).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Timeout, "{code}: {e:?}");
        }
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn maps_and_sets_cross_as_objects_and_arrays() {
        assert_eq!(json("new Map([['a', 1], ['b', 2]])"), r#"{"a":1,"b":2}"#);
        assert_eq!(json("new Map([[1, 'x']])"), r#"{"1":"x"}"#);
        // Keys that are not strings or numbers keep their identity as entries.
        assert_eq!(json("new Map([[{id: 1}, 'x'], [true, 'y']])"), r#"[[{"id":1},"x"],[true,"y"]]"#);
        assert_eq!(json("new Set([3, 1, 3])"), "[3,1]");
        // Nested, and inside arrays and objects.
        assert_eq!(
            json("({by: new Map([['k', new Set(['v'])]]), list: [new Map()]})"),
            r#"{"by":{"k":["v"]},"list":[{}]}"#
        );
        // Other values are untouched; toJSON still applies.
        assert_eq!(
            json("({d: new Date(0), n: null, a: [1, 'x']})"),
            r#"{"d":"1970-01-01T00:00:00.000Z","n":null,"a":[1,"x"]}"#
        );
        // Code that replaces `Map` only changes its own result.
        assert_eq!(json("globalThis.Map = 1; delete globalThis.Set; ({a: 1})"), r#"{"a":1}"#);
    }

    #[test]
    fn timeouts_name_the_limit() {
        assert!(timeout_error(Duration::from_secs(2)).message.contains("time limit of 2 s"));
        assert!(timeout_error(Duration::from_millis(1500)).message.contains("time limit of 1500 ms"));
    }
}
