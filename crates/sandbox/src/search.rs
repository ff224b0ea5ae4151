//! `search`: a pool of worker threads, one runtime each, with the specs
//! built once per runtime and a fresh context per call.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rquickjs::{Context, Object, Persistent, Runtime, Value};

use codemode_spec::Graph;

use crate::console::Console;
use crate::engine::{self, RunSpec, Stop};
use crate::spec_view::{self, ViewFns};
use crate::{ErrorKind, Limits, Outcome, ScriptError, SyncHost};

/// A spec offered to `search` code under a name.
#[derive(Clone, Debug)]
pub struct SearchSpec {
    /// Key in the `specs` global.
    pub name: String,
    /// The resolved spec.
    pub graph: Arc<Graph>,
}

/// Options of one `search` call beyond its code.
#[derive(Clone, Default)]
pub struct SearchCall {
    /// Backs the `codemode` global (`tools()`, `types()`); none: no such global.
    pub host: Option<Arc<dyn SyncHost>>,
    /// Specs this call may see (by name); none: all of them.
    pub visible: Option<Vec<String>>,
}

struct Job {
    code: String,
    call: SearchCall,
    cancel: Arc<AtomicBool>,
    reply: tokio::sync::oneshot::Sender<Outcome>,
}

/// Worker threads that run `search` code. Cheap to clone handles are not
/// needed: share it behind an `Arc`.
pub struct SearchPool {
    jobs: crossbeam_channel::Sender<Job>,
    workers: usize,
    /// Bytes each runtime holds once its specs are built (before any call).
    pub spec_bytes: usize,
}

impl SearchPool {
    /// Starts `workers` threads and waits until each has built every spec.
    /// `spec` is the global when exactly one spec is given; `specs` (name →
    /// spec) always.
    pub fn start(specs: Vec<SearchSpec>, workers: usize, limits: Limits) -> Result<SearchPool, String> {
        let workers = workers.max(1);
        let (jobs, rx) = crossbeam_channel::unbounded::<Job>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<usize, String>>();
        for i in 0..workers {
            let rx = rx.clone();
            let specs = specs.clone();
            let limits = limits.clone();
            let ready = ready_tx.clone();
            std::thread::Builder::new()
                .name(format!("codemode-search-{i}"))
                .stack_size(limits.stack_bytes + 8 * 1024 * 1024)
                .spawn(move || worker(specs, limits, rx, ready))
                .map_err(|e| format!("could not start a search worker: {e}"))?;
        }
        drop(ready_tx);
        let mut spec_bytes = 0;
        for _ in 0..workers {
            spec_bytes = ready_rx.recv().map_err(|_| "a search worker died while loading".to_string())??;
        }
        Ok(SearchPool { jobs, workers, spec_bytes })
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Runs one `search` call. Dropping the future cancels it.
    pub async fn run(&self, code: String) -> Outcome {
        self.run_with(code, SearchCall::default()).await
    }

    /// Runs one `search` call with the given options.
    pub async fn run_with(&self, code: String, call: SearchCall) -> Outcome {
        let started = Instant::now();
        let (reply, rx) = tokio::sync::oneshot::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        struct CancelOnDrop(Arc<AtomicBool>);
        impl Drop for CancelOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _guard = CancelOnDrop(cancel.clone());
        if self.jobs.send(Job { code, call, cancel, reply }).is_err() {
            return internal(started, "the search workers have stopped");
        }
        rx.await.unwrap_or_else(|_| internal(started, "a search worker ended without a result"))
    }
}

fn internal(started: Instant, message: &str) -> Outcome {
    Outcome {
        result: Err(ScriptError::new(ErrorKind::Internal, "InternalError", message)),
        console: vec![],
        console_dropped: 0,
        host_calls: 0,
        elapsed: started.elapsed(),
    }
}

/// Holds the runtime and what lives in it; fields drop in order, so the
/// persistent handles go before the runtime that owns their values.
struct Worker {
    roots: Vec<(String, Persistent<Value<'static>>)>,
    view: ViewFns,
    _holder: Context,
    stop: Stop,
    base_bytes: usize,
    rt: Runtime,
}

fn worker(
    specs: Vec<SearchSpec>,
    limits: Limits,
    jobs: crossbeam_channel::Receiver<Job>,
    ready: std::sync::mpsc::Sender<Result<usize, String>>,
) {
    let w = match build_worker(&specs, &limits) {
        Ok(w) => {
            let _ = ready.send(Ok(w.base_bytes));
            w
        }
        Err(e) => {
            let _ = ready.send(Err(format!("building the specs in the sandbox failed: {e}")));
            return;
        }
    };
    while let Ok(job) = jobs.recv() {
        if job.cancel.load(Ordering::Relaxed) {
            continue;
        }
        let outcome = run_job(&w, &job.code, &job.call, &limits, job.cancel.clone());
        let _ = job.reply.send(outcome);
        // What the call left behind is reclaimed by QuickJS's own GC
        // trigger (a cheap counter check on allocation, threshold set in
        // `build_worker`). Asking for `memory_usage()` here instead walks the
        // whole spec heap: ~13 ms per call on Cloudflare's spec.
    }
}

fn build_worker(specs: &[SearchSpec], limits: &Limits) -> rquickjs::Result<Worker> {
    let (rt, stop, _) = engine::new_runtime(limits)?;
    // Building a big spec allocates many small objects: don't GC halfway.
    rt.set_gc_threshold(usize::MAX);
    let holder = Context::full(&rt)?;
    let (view, roots) = holder.with(|ctx| -> rquickjs::Result<_> {
        let (view, fns) = ViewFns::install(&ctx)?;
        let mut roots = Vec::new();
        for s in specs {
            let root = spec_view::build(&ctx, &fns, &s.graph)?;
            roots.push((s.name.clone(), Persistent::save(&ctx, root)));
        }
        engine::freeze_realm(&ctx)?;
        Ok((view, roots))
    })?;
    rt.run_gc();
    let base_bytes = rt.memory_usage().malloc_size as usize;
    rt.set_memory_limit(base_bytes + limits.memory_bytes);
    // Collect cycles once calls have left 32 MiB behind, not on every call:
    // a collection scans the whole (large, shared) spec heap.
    rt.set_gc_threshold(base_bytes + 32 * 1024 * 1024);
    Ok(Worker { roots, view, _holder: holder, stop, base_bytes, rt })
}

fn run_job(w: &Worker, code: &str, call: &SearchCall, limits: &Limits, cancel: Arc<AtomicBool>) -> Outcome {
    let started = Instant::now();
    let deadline = started + limits.timeout;
    let stop = w.stop.arm(deadline, cancel);
    let console = Rc::new(RefCell::new(Console::with_cap(limits.console_bytes)));
    let result = match Context::full(&w.rt) {
        Err(e) => {
            Err(ScriptError::new(ErrorKind::Internal, "InternalError", &format!("could not create a context: {e}")))
        }
        Ok(ctx) => ctx.with(|ctx| {
            let setup = || -> rquickjs::Result<()> {
                engine::install_console(&ctx, console.clone())?;
                let specs = Object::new(ctx.clone())?;
                let visible: Vec<&(String, Persistent<Value<'static>>)> =
                    w.roots.iter().filter(|(name, _)| call.visible.as_ref().is_none_or(|v| v.contains(name))).collect();
                for (name, root) in &visible {
                    specs.set(name.as_str(), w.view.view(&ctx, root)?)?;
                }
                if w.roots.len() == 1 && visible.len() == 1 {
                    ctx.globals().set("spec", w.view.view(&ctx, &visible[0].1)?)?;
                }
                ctx.globals().set("specs", specs)?;
                if let Some(host) = call.host.clone() {
                    install_sync_host(&ctx, host)?;
                }
                Ok(())
            };
            if let Err(e) = setup() {
                return Err(ScriptError::new(
                    ErrorKind::Internal,
                    "InternalError",
                    &format!("sandbox setup failed: {e}"),
                ));
            }
            engine::run(&ctx, RunSpec { code, deadline, stop: stop.clone(), console: console.clone(), host: None })
        }),
    };
    w.stop.disarm();
    let (lines, dropped) = console.borrow_mut().take();
    Outcome { result, console: lines, console_dropped: dropped, host_calls: 0, elapsed: started.elapsed() }
}

/// Installs the `codemode` global (`tools()`, `types(name?)`) for one call.
fn install_sync_host(ctx: &rquickjs::Ctx<'_>, host: Arc<dyn SyncHost>) -> rquickjs::Result<()> {
    let call = rquickjs::Function::new(ctx.clone(), move |method: String, args: String| -> String {
        // "1<json>" for a result, "0<json>" for an error object.
        let args: serde_json::Value = serde_json::from_str(&args).unwrap_or(serde_json::Value::Array(vec![]));
        match host.call(&method, args) {
            Ok(v) => format!("1{v}"),
            Err(e) => format!("0{e}"),
        }
    })?;
    let make: rquickjs::Function = engine::eval_prelude(ctx, include_str!("../js/sync_host.js"))?;
    let obj: Object = make.call((call,))?;
    ctx.globals().set("codemode", obj)?;
    Ok(())
}
