//! In-process isolation: the same per-call runtimes as a worker process,
//! on host threads. For platforms without seccomp; weaker, because native
//! work QuickJS never interrupts runs to its end on the thread (and a
//! QuickJS bug would be in the host's address space).

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

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
/// through a channel; synchronous calls answered on the spot.
pub(crate) struct InProcBridge {
    handle: tokio::runtime::Handle,
    host: Option<Arc<dyn Host>>,
    catalog: Option<Arc<dyn SyncHost>>,
    done_tx: crossbeam_channel::Sender<Completion>,
    done_rx: crossbeam_channel::Receiver<Completion>,
    aborts: RefCell<Vec<tokio::task::AbortHandle>>,
}

impl InProcBridge {
    pub(crate) fn new(
        handle: tokio::runtime::Handle,
        host: Option<Arc<dyn Host>>,
        catalog: Option<Arc<dyn SyncHost>>,
    ) -> Self {
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        InProcBridge { handle, host, catalog, done_tx, done_rx, aborts: RefCell::default() }
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
        match self.done_rx.recv_deadline(until) {
            Ok(c) => Ok(Some(c)),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Ok(None),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err("host call channel closed".into()),
        }
    }

    fn sync_call(&self, method: &str, args: String) -> Result<String, String> {
        let catalog = self.catalog.clone().ok_or_else(|| r#"{"message":"no catalog"}"#.to_string())?;
        crate::sandbox::sync_call(catalog.as_ref(), method, &args)
    }
}
