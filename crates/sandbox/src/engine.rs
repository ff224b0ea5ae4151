//! The QuickJS runtime and the host-owned event loop every call runs in.
//!
//! Limits are enforced in three places, so that no single mechanism has to be
//! perfect: QuickJS's memory limit and stack limit; its interrupt handler,
//! which stops running JavaScript (loops, catastrophic regexes) once the
//! deadline passes or the call is cancelled; and the event loop below, which
//! waits for host completions only until the same deadline — so a promise that
//! never settles ends at the deadline too, or at once when nothing could ever
//! settle it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use rquickjs::context::EvalOptions;
use rquickjs::{Ctx, Function, Object, Runtime, Value};

use crate::console::Console;
use crate::normalize::{self, Form};
use crate::{ErrorKind, JsValue, Limits, ScriptError};

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// The file name QuickJS gives the model's code in stack traces.
pub(crate) const CODE_FILE: &str = "code.js";

/// When the current call must stop, shared with the interrupt handler.
#[derive(Clone, Default)]
pub(crate) struct Stop {
    deadline_ms: Arc<AtomicU64>,
    /// The current call's cancel flag. `arm` swaps it in here, in the slot
    /// the interrupt handler's clone shares, so the handler sees it.
    cancelled: Arc<std::sync::Mutex<Arc<AtomicBool>>>,
}

impl Stop {
    pub(crate) fn arm(&self, deadline: Instant, cancelled: Arc<AtomicBool>) -> Stop {
        self.deadline_ms.store(deadline.duration_since(*EPOCH).as_millis() as u64, Ordering::Relaxed);
        *self.cancelled.lock().unwrap_or_else(|e| e.into_inner()) = cancelled;
        self.clone()
    }
    pub(crate) fn disarm(&self) {
        self.deadline_ms.store(u64::MAX, Ordering::Relaxed);
    }
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.lock().unwrap_or_else(|e| e.into_inner()).load(Ordering::Relaxed)
    }
    fn should_stop(&self) -> bool {
        self.is_cancelled() || (EPOCH.elapsed().as_millis() as u64) >= self.deadline_ms.load(Ordering::Relaxed)
    }
}

/// Creates a runtime with the stack limit and an interrupt handler bound to
/// the returned [`Stop`]. The memory limit is set by the caller, which knows
/// what the runtime already holds (a shared spec, for `search`).
pub(crate) fn new_runtime(limits: &Limits) -> rquickjs::Result<(Runtime, Stop, Arc<AtomicBool>)> {
    let rt = Runtime::new()?;
    rt.set_max_stack_size(limits.stack_bytes);
    let cancel_slot = Arc::new(AtomicBool::new(false));
    let stop = Stop {
        deadline_ms: Arc::new(AtomicU64::new(u64::MAX)),
        cancelled: Arc::new(std::sync::Mutex::new(cancel_slot.clone())),
    };
    let handler_stop = stop.clone();
    rt.set_interrupt_handler(Some(Box::new(move || handler_stop.should_stop())));
    Ok((rt, stop, cancel_slot))
}

/// A completion of a host call, sent from the async side to the JS thread.
pub(crate) struct Completion {
    pub id: u64,
    /// `Ok(json)` resolves the call's promise with `JSON.parse(json)`;
    /// `Err(json)` rejects it with an `Error` built from that object.
    pub result: Result<String, String>,
}

/// The JS thread's end of the host-call plumbing.
pub(crate) struct HostLink {
    pub completions: crossbeam_channel::Receiver<Completion>,
    pub in_flight: Rc<Cell<usize>>,
    /// `complete(id, ok, json)` from `js/host.js`.
    pub complete: rquickjs::Persistent<Function<'static>>,
}

/// Everything one run needs besides the context.
pub(crate) struct RunSpec<'a> {
    pub code: &'a str,
    pub deadline: Instant,
    pub stop: Stop,
    pub console: Rc<RefCell<Console>>,
    pub host: Option<HostLink>,
}

/// Runs the model's code in `ctx` until its promise settles, the deadline
/// passes, or nothing can settle it any more.
pub(crate) fn run<'js>(ctx: &Ctx<'js>, spec: RunSpec<'_>) -> Result<JsValue, ScriptError> {
    let (code, fence_lines) = normalize::strip_fence(spec.code);
    let started = start(ctx, code, fence_lines, &spec)?;
    let (value, line_fix) = started;
    let promise = match value.as_promise() {
        Some(p) => p.clone(),
        None => return to_result(ctx, value, &line_fix),
    };
    let complete: Option<Function<'js>> = match &spec.host {
        Some(h) => {
            Some(h.complete.clone().restore(ctx).map_err(|e| internal(format!("sandbox prelude missing: {e}")))?)
        }
        None => None,
    };
    loop {
        // Drain the microtask queue; the interrupt handler bounds each job.
        while ctx.execute_pending_job() {}
        if spec.stop.should_stop() {
            return Err(stopped(&spec));
        }
        match promise.state() {
            rquickjs::promise::PromiseState::Resolved => {
                let v: Value = promise.result::<Value>().expect("settled").map_err(|e| caught(ctx, e, &line_fix))?;
                return to_result(ctx, v, &line_fix);
            }
            rquickjs::promise::PromiseState::Rejected => {
                let err = promise.result::<Value>().expect("settled").err().expect("rejected");
                return Err(caught(ctx, err, &line_fix));
            }
            rquickjs::promise::PromiseState::Pending => {}
        }
        let Some(host) = &spec.host else {
            return Err(never_settles(&spec.console));
        };
        if host.in_flight.get() == 0 {
            return Err(never_settles(&spec.console));
        }
        let now = Instant::now();
        let wait = spec.deadline.saturating_duration_since(now).min(Duration::from_millis(100));
        match host.completions.recv_timeout(wait) {
            Ok(c) => {
                host.in_flight.set(host.in_flight.get() - 1);
                let (ok, payload) = match c.result {
                    Ok(p) => (true, p),
                    Err(p) => (false, p),
                };
                if let Some(f) = &complete {
                    if let Err(e) = f.call::<_, ()>((c.id as f64, ok, payload)) {
                        return Err(caught(ctx, e, &line_fix));
                    }
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                if Instant::now() >= spec.deadline || spec.stop.should_stop() {
                    return Err(stopped(&spec));
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                return Err(internal("host call channel closed".into()));
            }
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

/// Evaluates the first candidate form that parses; returns its value (a
/// promise for async code) and how to map its positions.
fn start<'js>(
    ctx: &Ctx<'js>,
    code: &str,
    fence_lines: u32,
    spec: &RunSpec<'_>,
) -> Result<(Value<'js>, LineFix), ScriptError> {
    let mut syntax_errors = Vec::new();
    for cand in normalize::candidates(code) {
        let fix = LineFix {
            wrapper_lines: cand.line_offset,
            fence_lines,
            first_line_cols: if cand.form == Form::Expression { 1 } else { 0 },
        };
        let mut opts = EvalOptions::default();
        opts.global = true;
        opts.strict = false;
        opts.promise = cand.form == Form::Script;
        opts.filename = Some(CODE_FILE.to_string());
        match ctx.eval_with_options::<Value, _>(cand.source.as_bytes(), opts) {
            Ok(v) => {
                if spec.stop.should_stop() {
                    return Err(stopped(spec));
                }
                let v = match cand.form {
                    Form::Script => v,
                    Form::Expression | Form::Body => match v.as_function() {
                        Some(f) => f.call::<_, Value>(()).map_err(|e| caught(ctx, e, &fix))?,
                        None => v,
                    },
                };
                if cand.form == Form::Script {
                    // With top-level await QuickJS resolves to `{value}`: unwrap it.
                    let unwrap: Function = ctx
                        .eval("(p) => Promise.resolve(p).then((r) => (r === null || typeof r !== 'object') ? r : r.value)")
                        .map_err(|e| internal(format!("{e}")))?;
                    let v = unwrap.call::<_, Value>((v,)).map_err(|e| caught(ctx, e, &fix))?;
                    return Ok((v, fix));
                }
                return Ok((v, fix));
            }
            Err(e) => {
                let err = caught(ctx, e, &fix);
                if err.kind == ErrorKind::Syntax {
                    syntax_errors.push((cand.form, err));
                    continue;
                }
                return Err(err);
            }
        }
    }
    let intended = normalize::intended_form(code);
    let pick = syntax_errors.iter().position(|(f, _)| *f == intended).unwrap_or(0);
    let (_, mut err) = syntax_errors.swap_remove(pick);
    err.message = format!(
        "{} (the code must be an async arrow function such as `async () => {{ ... }}`, an expression, or statements ending in `return`)",
        err.message
    );
    Err(err)
}

/// Converts the settled value into what crosses the boundary.
fn to_result<'js>(ctx: &Ctx<'js>, v: Value<'js>, fix: &LineFix) -> Result<JsValue, ScriptError> {
    if v.is_undefined() {
        return Ok(JsValue::Undefined);
    }
    if let Some(s) = v.as_string() {
        return s.to_string().map(JsValue::String).map_err(|e| caught(ctx, e, fix));
    }
    let json = ctx.json_stringify(v).map_err(|e| {
        let mut err = caught(ctx, e, fix);
        err.message = format!("the result could not be turned into JSON: {}", err.message);
        err
    })?;
    match json {
        None => Ok(JsValue::Undefined), // functions, symbols
        Some(s) => {
            let s = s.to_string().map_err(|e| caught(ctx, e, fix))?;
            serde_json::from_str(&s)
                .map(JsValue::Json)
                .map_err(|e| internal(format!("result JSON did not parse on the host: {e}")))
        }
    }
}

fn stopped(spec: &RunSpec<'_>) -> ScriptError {
    if spec.stop.is_cancelled() {
        ScriptError::new(ErrorKind::Cancelled, "Cancelled", "the call was cancelled by the client")
    } else {
        ScriptError::new(
            ErrorKind::Timeout,
            "TimeoutError",
            "the code ran past its time limit and was stopped; make it do less (filter earlier, fewer requests, no busy loops) or split it into several calls",
        )
    }
}

fn never_settles(_console: &Rc<RefCell<Console>>) -> ScriptError {
    ScriptError::new(
        ErrorKind::NeverSettles,
        "NeverSettlesError",
        "the code's promise can never settle: it awaits something that nothing will resolve (no request is in flight). Make sure every promise you await is resolved or rejected",
    )
}

fn internal(message: String) -> ScriptError {
    ScriptError::new(ErrorKind::Internal, "InternalError", &message)
}

/// Turns a caught rquickjs error (usually a thrown JS value) into a
/// [`ScriptError`] with positions in the model's own code.
pub(crate) fn caught<'js>(ctx: &Ctx<'js>, e: rquickjs::Error, fix: &LineFix) -> ScriptError {
    let value = match e {
        rquickjs::Error::Exception => ctx.catch(),
        // QuickJS reports allocation failures it cannot even build an
        // exception for this way.
        rquickjs::Error::Unknown => {
            return ScriptError::new(
                ErrorKind::OutOfMemory,
                "InternalError",
                "the code (or turning its result into JSON) needed more memory than the limit allows; return less: filter, select fields, paginate",
            )
        }
        other => return internal(other.to_string()),
    };
    if value.is_null() {
        // QuickJS throws `null` when it runs out of memory while building
        // the out-of-memory error itself.
        return ScriptError::new(
            ErrorKind::OutOfMemory,
            "InternalError",
            "the code (or turning its result into JSON) needed more memory than the limit allows; return less: filter, select fields, paginate",
        );
    }
    let Some(obj) = value.as_object() else {
        // `throw "text"` or `throw 42`
        let text = ctx
            .json_stringify(value.clone())
            .ok()
            .flatten()
            .and_then(|s| s.to_string().ok())
            .unwrap_or_else(|| "undefined".into());
        return ScriptError::new(ErrorKind::Runtime, "Error", &format!("uncaught value thrown: {text}"));
    };
    let get = |k: &str| obj.get::<_, Option<rquickjs::Coerced<String>>>(k).ok().flatten().map(|c| c.0);
    let name = get("name").unwrap_or_else(|| "Error".into());
    let message = get("message").unwrap_or_default();
    let stack = get("stack");
    let kind = classify(&name, &message);
    let mut err = ScriptError::new(kind, &name, &message);
    if let Some((line, col)) = stack.as_deref().and_then(position_in_code) {
        let (l, c) = fix.apply(line, col);
        err.line = Some(l);
        err.column = Some(c);
    }
    err.stack = stack.map(|s| rewrite_stack(&s, fix));
    err.details = extra_fields(ctx, obj);
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
    for key in obj.keys::<String>().flatten() {
        if matches!(key.as_str(), "name" | "message" | "stack") {
            continue;
        }
        let Ok(v) = obj.get::<_, Value>(&*key) else {
            continue;
        };
        let json = ctx.json_stringify(v).ok().flatten().and_then(|s| s.to_string().ok());
        if let Some(parsed) = json.and_then(|s| serde_json::from_str(&s).ok()) {
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
pub(crate) fn eval_prelude<'js, T: rquickjs::FromJs<'js>>(ctx: &Ctx<'js>, source: &str) -> rquickjs::Result<T> {
    let mut opts = EvalOptions::default();
    opts.global = true;
    opts.strict = true;
    opts.filename = Some("<prelude>".to_string());
    ctx.eval_with_options(source, opts)
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

/// Deep-freezes everything reachable from this context's global object, so
/// that objects shared with other contexts (whose prototypes live here) cannot
/// be used to pass anything from one call to the next.
pub(crate) fn freeze_realm(ctx: &Ctx<'_>) -> rquickjs::Result<()> {
    eval_prelude::<()>(ctx, include_str!("../js/freeze_realm.js"))
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
}
