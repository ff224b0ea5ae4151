//! In-process isolation: the same per-call runtimes as a worker process,
//! on host threads. For platforms without seccomp; weaker, because native
//! work QuickJS never interrupts runs to its end on the thread (and a
//! QuickJS bug would be in the host's address space).

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::engine::{Bridge, Completion};
use crate::wire::WireOutcome;
use crate::{Host, SyncHost};

type Task = Box<dyn FnOnce() + Send>;

/// A fixed set of threads that run calls; more calls wait their turn.
pub(crate) struct ThreadPool {
    tasks: crossbeam_channel::Sender<Task>,
}

impl ThreadPool {
    /// Starts `threads` threads, each with room for the JavaScript stack.
    pub(crate) fn start(name: &str, threads: usize, stack_bytes: usize) -> Result<ThreadPool, String> {
        let (tasks, rx) = crossbeam_channel::unbounded::<Task>();
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .stack_size(stack_bytes + 8 * 1024 * 1024)
                .spawn(move || {
                    while let Ok(task) = rx.recv() {
                        task();
                    }
                })
                .map_err(|e| format!("could not start a sandbox thread: {e}"))?;
        }
        Ok(ThreadPool { tasks })
    }

    /// Runs `f` on a pool thread with a cancel flag that is set when the
    /// returned future is dropped.
    pub(crate) async fn run(
        &self,
        f: impl FnOnce(Arc<AtomicBool>) -> (WireOutcome, crate::runner::Teardown) + Send + 'static,
    ) -> Result<WireOutcome, String> {
        let cancel = Arc::new(AtomicBool::new(false));
        struct CancelOnDrop(Arc<AtomicBool>);
        impl Drop for CancelOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _guard = CancelOnDrop(cancel.clone());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task_cancel = cancel.clone();
        let task: Task = Box::new(move || {
            if task_cancel.load(Ordering::Relaxed) {
                return;
            }
            let (outcome, teardown) = f(task_cancel);
            let _ = tx.send(outcome);
            drop(teardown);
        });
        self.tasks.send(task).map_err(|_| "the sandbox threads have stopped".to_string())?;
        rx.await.map_err(|_| "a sandbox thread ended without a result".to_string())
    }
}

/// Host calls from a pool thread: started on the Tokio runtime, completed
/// through a channel; synchronous calls answered on the spot. The host's
/// clock, if any, is read directly; a task on the runtime wakes a waiting
/// [`Bridge::next`] whenever it is held or released.
pub(crate) struct InProcBridge {
    handle: tokio::runtime::Handle,
    host: Option<Arc<dyn Host>>,
    catalog: Option<Arc<dyn SyncHost>>,
    clock: Option<Clock>,
    done_tx: crossbeam_channel::Sender<Completion>,
    done_rx: crossbeam_channel::Receiver<Completion>,
    /// A message per change of the clock's state (with a clock).
    wake_rx: Option<crossbeam_channel::Receiver<()>>,
    aborts: RefCell<Vec<tokio::task::AbortHandle>>,
}

impl InProcBridge {
    pub(crate) fn new(
        handle: tokio::runtime::Handle,
        host: Option<Arc<dyn Host>>,
        catalog: Option<Arc<dyn SyncHost>>,
        clock: Option<Clock>,
    ) -> Self {
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        let mut aborts = Vec::new();
        let mut wake_rx = None;
        if let Some(clock) = &clock {
            let (wake_tx, rx) = crossbeam_channel::unbounded();
            wake_rx = Some(rx);
            let mut held = clock.subscribe();
            held.borrow_and_update();
            let watcher = handle.spawn(async move {
                while held.changed().await.is_ok() {
                    if wake_tx.send(()).is_err() {
                        return;
                    }
                }
            });
            aborts.push(watcher.abort_handle());
        }
        InProcBridge { handle, host, catalog, clock, done_tx, done_rx, wake_rx, aborts: RefCell::new(aborts) }
    }
}

impl Drop for InProcBridge {
    fn drop(&mut self) {
        // Upstream calls still in flight are of no use any more.
        for a in self.aborts.borrow().iter() {
            a.abort();
        }
    }
}

impl Bridge for InProcBridge {
    fn progress(&self, report: crate::ProgressReport) -> Result<(), String> {
        if let Some(host) = &self.host {
            host.progress(report);
        }
        Ok(())
    }

    fn start(&self, id: u64, client: &str, method: &str, args: String) -> Result<(), String> {
        let host = self.host.clone().ok_or("this call has no host")?;
        let done = self.done_tx.clone();
        let (client, method) = (client.to_string(), method.to_string());
        let task = self.handle.spawn(async move {
            let completion = crate::sandbox::host_call(host.as_ref(), id, &client, &method, &args).await;
            let _ = done.send(completion);
        });
        self.aborts.borrow_mut().push(task.abort_handle());
        Ok(())
    }

    fn next(&self, until: Instant) -> Result<Option<Completion>, String> {
        let closed = || "host call channel closed".to_string();
        let Some(wake) = &self.wake_rx else {
            return match self.done_rx.recv_deadline(until) {
                Ok(c) => Ok(Some(c)),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => Ok(None),
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err(closed()),
            };
        };
        crossbeam_channel::select! {
            recv(self.done_rx) -> c => c.map(Some).map_err(|_| closed()),
            // The clock was held or released: the event loop looks again.
            recv(wake) -> w => w.map(|()| None).map_err(|_| "the clock watcher stopped".to_string()),
            default(until.saturating_duration_since(Instant::now())) => Ok(None),
        }
    }

    fn held(&self) -> bool {
        self.clock.as_ref().is_some_and(Clock::is_held)
    }

    fn held_total(&self) -> Duration {
        self.clock.as_ref().map_or(Duration::ZERO, Clock::paused_total)
    }

    fn sync_call(&self, method: &str, args: String) -> Result<String, String> {
        let catalog = self.catalog.clone().ok_or_else(|| r#"{"message":"no catalog"}"#.to_string())?;
        crate::sandbox::sync_call(catalog.as_ref(), method, &args)
    }
}
