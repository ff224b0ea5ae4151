//! One call, start to end, in a runtime of its own: the part of the sandbox
//! that is the same in a worker process and in-process. Each JS global is
//! installed here, in one place per kind: the web-standard ones of both
//! tools (`install_standard`: URL, TextEncoder, timers, crypto…),
//! `console`, `specs`/`spec` and `codemode` for search, clients and
//! `progress` for execute.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use rquickjs::{Ctx, Function, Object, Persistent};

use crate::console::Console;
use crate::engine::{self, Bridge, HostLink, RunSpec, Stop, TimerLink};
use crate::spec_view::{self, NamedSpec};
use crate::timers::{TimerKind, Timers};
use crate::web;
use crate::wire::WireOutcome;
use crate::{ErrorKind, ExecuteEnv, Limits, ScriptError};

/// The call's runtime, kept past the reply: freeing a runtime walks every
/// object the call made (a spec walk makes many), so callers drop this only
/// after the answer is on its way.
pub(crate) struct Teardown(#[allow(dead_code)] pub(crate) Option<(rquickjs::Context, rquickjs::Runtime)>);

/// A `search` call as the runner sees it.
pub(crate) struct SearchJob<'a> {
    pub code: &'a str,
    pub limits: &'a Limits,
    /// The specs this call may see.
    pub visible: Vec<NamedSpec>,
    /// Also define `spec` (exactly one API is configured and visible).
    pub single: bool,
    /// Define `codemode.tools()/types()` (answered through the bridge).
    pub catalog: bool,
}

/// Runs one `search` call.
pub(crate) fn search(job: SearchJob<'_>, bridge: Rc<dyn Bridge>, cancel: Arc<AtomicBool>) -> (WireOutcome, Teardown) {
    let started = Instant::now();
    let stop = Stop::new(started + job.limits.timeout, cancel);
    let console = Rc::new(RefCell::new(Console::with_cap(job.limits.console_bytes)));
    let mut teardown = Teardown(None);
    let result = match engine::new_runtime(job.limits, &stop) {
        Err(e) => Err(setup_failed(e)),
        Ok((rt, ctx)) => {
            let result = ctx.with(|ctx| {
                let setup = || -> rquickjs::Result<TimerLink> {
                    let timers = install_standard(&ctx)?;
                    engine::install_console(&ctx, console.clone())?;
                    spec_view::install(&ctx, job.visible.clone(), job.single)?;
                    if job.catalog {
                        install_catalog(&ctx, bridge.clone())?;
                    }
                    Ok(timers)
                };
                let timers = setup().map_err(setup_failed)?;
                engine::run(
                    &ctx,
                    RunSpec {
                        code: job.code,
                        limits: job.limits,
                        stop: stop.clone(),
                        bridge: bridge.clone(),
                        host: None,
                        timers,
                    },
                )
            });
            teardown = Teardown(Some((ctx, rt)));
            result
        }
    };
    let (console, console_dropped) = console.borrow_mut().take();
    (WireOutcome { result, console, console_dropped, host_calls: 0, retire: false }, teardown)
}

/// Runs one `execute` call.
pub(crate) fn execute(
    code: &str,
    limits: &Limits,
    env: &ExecuteEnv,
    bridge: Rc<dyn Bridge>,
    cancel: Arc<AtomicBool>,
) -> (WireOutcome, Teardown) {
    let started = Instant::now();
    let stop = Stop::new(started + limits.timeout, cancel);
    let console = Rc::new(RefCell::new(Console::with_cap(limits.console_bytes)));
    let calls = Rc::new(Cell::new(0u32));
    let mut teardown = Teardown(None);
    let result = match engine::new_runtime(limits, &stop) {
        Err(e) => Err(setup_failed(e)),
        Ok((rt, ctx)) => {
            let result = ctx.with(|ctx| {
                let in_flight = Rc::new(Cell::new(0usize));
                let setup = || -> rquickjs::Result<_> {
                    let timers = install_standard(&ctx)?;
                    install_progress(&ctx, bridge.clone())?;
                    let complete =
                        install_clients(&ctx, env, limits, bridge.clone(), in_flight.clone(), calls.clone())?;
                    engine::install_console(&ctx, console.clone())?;
                    Ok((timers, complete))
                };
                let (timers, complete) = setup().map_err(setup_failed)?;
                engine::run(
                    &ctx,
                    RunSpec {
                        code,
                        limits,
                        stop: stop.clone(),
                        bridge: bridge.clone(),
                        host: Some(HostLink { in_flight, complete }),
                        timers,
                    },
                )
            });
            teardown = Teardown(Some((ctx, rt)));
            result
        }
    };
    let (console, console_dropped) = console.borrow_mut().take();
    (WireOutcome { result, console, console_dropped, host_calls: calls.get(), retire: false }, teardown)
}

fn setup_failed(e: rquickjs::Error) -> ScriptError {
    ScriptError::new(ErrorKind::Internal, "InternalError", &format!("sandbox setup failed: {e}"))
}

/// Installs the web-standard globals both tools have — `URL`,
/// `URLSearchParams`, `TextEncoder`, `TextDecoder`, `atob`, `btoa`,
/// `structuredClone`, `crypto`, `setTimeout`/`setInterval` and their
/// `clear…` — before anything else, so that a client or `progress` of the
/// same name takes the name. All but the timers are built on first touch
/// (`js/lazy.js`): an empty call pays for none of them. Each is a frozen
/// object or function (with a frozen prototype) on a writable,
/// configurable global, as in browsers: a script may shadow one for
/// itself, and the runtime dies with the call. The native halves are
/// captured by the preludes' closures and never become reachable from the
/// code; none of them reaches the host. Returns the call's timers, for the
/// event loop.
pub(crate) fn install_standard<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<TimerLink> {
    let load = Function::new(
        ctx.clone(),
        |ctx: Ctx<'js>,
         group: String,
         atob: rquickjs::Value<'js>,
         btoa: rquickjs::Value<'js>|
         -> rquickjs::Result<Object<'js>> {
            match group.as_str() {
                "url" => {
                    let make: Function = engine::eval_prelude(&ctx, include_str!("../js/url.js"))?;
                    make.call(web::url_functions(&ctx)?)
                }
                "encoding" => {
                    let (encode, decode) = web::encoding_functions(&ctx)?;
                    let make: Function = engine::eval_prelude(&ctx, include_str!("../js/encoding.js"))?;
                    make.call((encode, decode, atob, btoa))
                }
                "crypto" => {
                    let make: Function = engine::eval_prelude(&ctx, include_str!("../js/crypto.js"))?;
                    make.call((web::random_function(&ctx)?,))
                }
                "clone" => {
                    let make: Function = engine::eval_prelude(&ctx, include_str!("../js/clone.js"))?;
                    make.call(())
                }
                other => Err(rquickjs::Exception::throw_type(&ctx, &format!("no group of globals named {other:?}"))),
            }
        },
    )?;
    let lazy: Function = engine::eval_prelude(ctx, include_str!("../js/lazy.js"))?;
    lazy.call::<_, ()>((load,))?;

    let queue = Rc::new(RefCell::new(Timers::default()));
    let q = queue.clone();
    let add = Function::new(ctx.clone(), move |ctx: Ctx<'js>, ms: f64, interval: bool| -> rquickjs::Result<u32> {
        let kind = if interval { TimerKind::Interval } else { TimerKind::Timeout };
        q.borrow_mut().add(Instant::now(), ms, kind).map_err(|e| rquickjs::Exception::throw_range(&ctx, &e))
    })?;
    let q = queue.clone();
    let again = Function::new(ctx.clone(), move |id: f64, ms: f64| {
        if id.fract() == 0.0 && id >= 1.0 && id <= u32::MAX as f64 {
            q.borrow_mut().again(Instant::now(), id as u32, ms);
        }
    })?;
    let q = queue.clone();
    let clear = Function::new(ctx.clone(), move |id: f64| {
        if id.fract() == 0.0 && id >= 1.0 && id <= u32::MAX as f64 {
            q.borrow_mut().clear(id as u32);
        }
    })?;
    let make: Function = engine::eval_prelude(ctx, include_str!("../js/timers.js"))?;
    let timers: Object = make.call((add, again, clear))?;
    let set: Object = timers.get("globals")?;
    let globals = ctx.globals();
    for key in set.keys::<String>() {
        let key = key?;
        globals.set(key.as_str(), set.get::<_, rquickjs::Value>(key.as_str())?)?;
    }
    let fire: Function = timers.get("fire")?;
    Ok(TimerLink { queue, fire: Persistent::save(ctx, fire) })
}

/// Installs the `codemode` global of `search` (`tools()`, `types(name?)`).
fn install_catalog<'js>(ctx: &Ctx<'js>, bridge: Rc<dyn Bridge>) -> rquickjs::Result<()> {
    let call = Function::new(ctx.clone(), move |method: String, args: String| -> String {
        // "1<json>" for a result, "0<json>" for an error object.
        match bridge.sync_call(&method, args) {
            Ok(v) => format!("1{v}"),
            Err(e) => format!("0{e}"),
        }
    })?;
    let make: Function = engine::eval_prelude(ctx, include_str!("../js/sync_host.js"))?;
    let obj: Object = make.call((call,))?;
    ctx.globals().set("codemode", obj)?;
    Ok(())
}

/// Installs `progress(message, fraction?)` of `execute` (before the
/// clients: an API named `progress` takes the name).
fn install_progress<'js>(ctx: &Ctx<'js>, bridge: Rc<dyn Bridge>) -> rquickjs::Result<()> {
    let gate = RefCell::new(crate::progress::Gate::new(crate::progress::MIN_INTERVAL));
    let sink = Function::new(ctx.clone(), move |message: String, fraction: f64| -> bool {
        let fraction = (fraction >= 0.0).then_some(fraction);
        match gate.borrow_mut().admit(Instant::now(), &message, fraction) {
            Some(report) => bridge.progress(report).is_ok(),
            None => false,
        }
    })?;
    let make: Function = engine::eval_prelude(ctx, include_str!("../js/progress.js"))?;
    let progress: Function = make.call((sink,))?;
    ctx.globals().set("progress", progress)?;
    Ok(())
}

/// Installs the client objects of `execute` and returns `complete`.
fn install_clients<'js>(
    ctx: &Ctx<'js>,
    env: &ExecuteEnv,
    limits: &Limits,
    bridge: Rc<dyn Bridge>,
    in_flight: Rc<Cell<usize>>,
    calls: Rc<Cell<u32>>,
) -> rquickjs::Result<Persistent<Function<'static>>> {
    let max_calls = limits.max_host_calls;
    let send = Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>, client: String, method: String, payload: String| -> rquickjs::Result<f64> {
            if calls.get() >= max_calls {
                return Err(rquickjs::Exception::throw_range(
                    &ctx,
                    &format!(
                        "this execution reached its limit of {max_calls} upstream requests; fetch less (use filters, larger pages) or split the work into several execute calls"
                    ),
                ));
            }
            let id = calls.get() as u64;
            bridge.start(id, &client, &method, payload).map_err(|e| {
                rquickjs::Exception::throw_internal(&ctx, &format!("the host could not be reached: {e}"))
            })?;
            calls.set(calls.get() + 1);
            in_flight.set(in_flight.get() + 1);
            Ok(id as f64)
        },
    )?;
    let make: Function = engine::eval_prelude(ctx, include_str!("../js/host.js"))?;
    let bridge_obj: Object = make.call((send, byte_codec(ctx)?))?;
    let client_fn: Function = bridge_obj.get("client")?;
    let globals = ctx.globals();
    for c in &env.clients {
        let obj: Object = client_fn.call((c.global.clone(), c.methods.clone()))?;
        globals.set(c.global.as_str(), obj)?;
    }
    let dynamic_fn: Function = bridge_obj.get("dynamic")?;
    for name in &env.dynamic_clients {
        let obj: Object = dynamic_fn.call((name.clone(),))?;
        globals.set(name.as_str(), obj)?;
    }
    for (alias, target) in &env.aliases {
        let obj: Object = globals.get(target.as_str())?;
        globals.set(alias.as_str(), obj)?;
    }
    let complete: Function = bridge_obj.get("complete")?;
    Ok(Persistent::save(ctx, complete))
}

/// The native codec of the client bridge (`js/host.js`), kept inside the
/// bridge's closure: base64 of a `Uint8Array`, a `Uint8Array` of base64,
/// and UTF-8 text of a `Uint8Array` (lossy). Pure functions of their
/// arguments; new arrays are allocated by QuickJS, so they count against
/// the call's memory limit.
fn byte_codec<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Object<'js>> {
    use base64::Engine as _;
    use rquickjs::{Exception, TypedArray};
    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
    let codec = Object::new(ctx.clone())?;
    fn with_bytes<'a, T>(ctx: &Ctx<'a>, a: &TypedArray<'a, u8>, f: impl FnOnce(&[u8]) -> T) -> rquickjs::Result<T> {
        // SAFETY: the slice is used and dropped before any JavaScript runs
        // again, so its buffer can be neither detached nor resized meanwhile.
        match unsafe { a.as_bytes() } {
            Some(b) => Ok(f(b)),
            None => Err(Exception::throw_type(ctx, "the array's buffer is detached")),
        }
    }
    codec.set(
        "toBase64",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, a: TypedArray<'js, u8>| with_bytes(&ctx, &a, |b| B64.encode(b)))?,
    )?;
    codec.set(
        "utf8",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, a: TypedArray<'js, u8>| {
            with_bytes(&ctx, &a, |b| String::from_utf8_lossy(b).into_owned())
        })?,
    )?;
    codec.set(
        "fromBase64",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, text: String| -> rquickjs::Result<TypedArray<'js, u8>> {
            let bytes = B64
                .decode(text.as_bytes())
                .map_err(|e| Exception::throw_type(&ctx, &format!("the host sent bytes that are not base64: {e}")))?;
            TypedArray::new_copy(ctx.clone(), &bytes)
        })?,
    )?;
    Ok(codec)
}
