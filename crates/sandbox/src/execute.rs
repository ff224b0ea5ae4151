//! `execute`: a fresh runtime per call, on its own thread, with client
//! objects whose methods are host calls.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rquickjs::{Context, Ctx, Function, Object, Persistent};

use crate::console::Console;
use crate::engine::{self, Completion, HostLink, RunSpec};
use crate::{ErrorKind, Host, Limits, Outcome, ScriptError};

/// A global object the code can call, e.g. `cloudflare` with `request`.
#[derive(Clone, Debug)]
pub struct Client {
    /// Global name (a JavaScript identifier).
    pub global: String,
    /// Method names; each becomes `global.method(...args)` → [`Host::call`].
    pub methods: Vec<String>,
}

/// The globals of an `execute` call.
#[derive(Clone, Debug, Default)]
pub struct ExecuteEnv {
    /// Client objects.
    pub clients: Vec<Client>,
    /// Extra names for clients: `(alias, global)`, e.g. `("api", "cloudflare")`.
    pub aliases: Vec<(String, String)>,
    /// Globals whose every property is a method (`codemode.<server>_<tool>`).
    pub dynamic_clients: Vec<String>,
}

/// Sets the cancel flag when the call's future is dropped (the client went
/// away or cancelled): the interrupt handler then stops the JavaScript.
struct CancelOnDrop(Arc<AtomicBool>);
impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `code` in a fresh sandbox. Host calls run on the current Tokio
/// runtime; the JavaScript runs on a dedicated thread. Dropping the returned
/// future cancels the call.
pub async fn execute(code: String, env: Arc<ExecuteEnv>, limits: Limits, host: Arc<dyn Host>) -> Outcome {
    let handle = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let cancel = Arc::new(AtomicBool::new(false));
    let _guard = CancelOnDrop(cancel.clone());
    let started = Instant::now();
    let thread_cancel = cancel.clone();
    let spawned = std::thread::Builder::new()
        .name("codemode-execute".into())
        .stack_size(limits.stack_bytes + 8 * 1024 * 1024)
        .spawn(move || {
            let outcome = run_on_this_thread(&code, &env, &limits, host, handle, thread_cancel);
            let _ = tx.send(outcome);
        });
    if let Err(e) = spawned {
        return failed(started, format!("could not start the sandbox thread: {e}"));
    }
    match rx.await {
        Ok(outcome) => outcome,
        Err(_) => failed(started, "the sandbox thread ended without a result".into()),
    }
}

fn failed(started: Instant, message: String) -> Outcome {
    Outcome {
        result: Err(ScriptError::new(ErrorKind::Internal, "InternalError", &message)),
        console: vec![],
        console_dropped: 0,
        host_calls: 0,
        elapsed: started.elapsed(),
    }
}

fn run_on_this_thread(
    code: &str,
    env: &ExecuteEnv,
    limits: &Limits,
    host: Arc<dyn Host>,
    handle: tokio::runtime::Handle,
    cancel: Arc<AtomicBool>,
) -> Outcome {
    let started = Instant::now();
    let setup = || -> rquickjs::Result<_> {
        let (rt, stop, _) = engine::new_runtime(limits)?;
        rt.set_memory_limit(limits.memory_bytes);
        let ctx = Context::full(&rt)?;
        Ok((rt, stop, ctx))
    };
    let (rt, stop, ctx) = match setup() {
        Ok(x) => x,
        Err(e) => return failed(started, format!("could not create the sandbox: {e}")),
    };
    let stop = stop.arm(started + limits.timeout, cancel);
    let console = Rc::new(RefCell::new(Console::with_cap(limits.console_bytes)));
    let calls = Rc::new(Cell::new(0u32));
    let aborts: Rc<RefCell<Vec<tokio::task::AbortHandle>>> = Rc::default();
    let result = ctx.with(|ctx| {
        let (done_tx, done_rx) = crossbeam_channel::unbounded::<Completion>();
        let in_flight = Rc::new(Cell::new(0usize));
        let complete =
            install_clients(&ctx, env, limits, host, handle, done_tx, in_flight.clone(), calls.clone(), aborts.clone())
                .and_then(|c| engine::install_console(&ctx, console.clone()).map(|_| c));
        let complete = match complete {
            Ok(c) => c,
            Err(e) => {
                return Err(ScriptError::new(
                    ErrorKind::Internal,
                    "InternalError",
                    &format!("sandbox setup failed: {e}"),
                ))
            }
        };
        engine::run(
            &ctx,
            RunSpec {
                code,
                deadline: started + limits.timeout,
                stop: stop.clone(),
                console: console.clone(),
                host: Some(HostLink { completions: done_rx, in_flight, complete }),
            },
        )
    });
    // Upstream calls still in flight are of no use any more.
    for a in aborts.borrow().iter() {
        a.abort();
    }
    drop(ctx);
    drop(rt);
    let (lines, dropped) = console.borrow_mut().take();
    Outcome { result, console: lines, console_dropped: dropped, host_calls: calls.get(), elapsed: started.elapsed() }
}

#[allow(clippy::too_many_arguments)]
fn install_clients<'js>(
    ctx: &Ctx<'js>,
    env: &ExecuteEnv,
    limits: &Limits,
    host: Arc<dyn Host>,
    handle: tokio::runtime::Handle,
    done: crossbeam_channel::Sender<Completion>,
    in_flight: Rc<Cell<usize>>,
    calls: Rc<Cell<u32>>,
    aborts: Rc<RefCell<Vec<tokio::task::AbortHandle>>>,
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
            let args: serde_json::Value = serde_json::from_str(&payload)
                .map_err(|e| rquickjs::Exception::throw_type(&ctx, &format!("arguments are not JSON: {e}")))?;
            let id = calls.get() as u64;
            calls.set(calls.get() + 1);
            in_flight.set(in_flight.get() + 1);
            let host = host.clone();
            let done = done.clone();
            let task = handle.spawn(async move {
                let result = host.call(&client, &method, args).await;
                let result = match result {
                    Ok(v) => Ok(serde_json::to_string(&v).unwrap_or_else(|_| "null".into())),
                    Err(e) => Err(serde_json::to_string(&e).unwrap_or_else(|_| "{\"message\":\"host error\"}".into())),
                };
                let _ = done.send(Completion { id, result });
            });
            aborts.borrow_mut().push(task.abort_handle());
            Ok(id as f64)
        },
    )?;
    let make: Function = engine::eval_prelude(ctx, include_str!("../js/host.js"))?;
    let bridge: Object = make.call((send,))?;
    let client_fn: Function = bridge.get("client")?;
    let globals = ctx.globals();
    for c in &env.clients {
        let obj: Object = client_fn.call((c.global.clone(), c.methods.clone()))?;
        globals.set(c.global.as_str(), obj)?;
    }
    let dynamic_fn: Function = bridge.get("dynamic")?;
    for name in &env.dynamic_clients {
        let obj: Object = dynamic_fn.call((name.clone(),))?;
        globals.set(name.as_str(), obj)?;
    }
    for (alias, target) in &env.aliases {
        let obj: Object = globals.get(target.as_str())?;
        globals.set(alias.as_str(), obj)?;
    }
    let complete: Function = bridge.get("complete")?;
    Ok(Persistent::save(ctx, complete))
}
