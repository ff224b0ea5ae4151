//! The host side of the process wall: pre-started worker processes, one
//! call at a time each, killed at the deadline.
//!
//! A worker inherits nothing but its pipes and the sealed memfds of the
//! packed specs: its environment is empty, so it never holds a credential.
//! The host keeps every policy and secret; a worker only asks (host calls
//! are messages, answered or refused here). Anything a worker sends is
//! treated as hostile: a malformed message, an unexpected one, or too many
//! host calls end the worker, never the host.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::Semaphore;

use crate::clock::Clock;
use crate::engine::timeout_error;
use crate::sandbox::WorkerCommand;
use crate::spec_view::NamedSpec;
use crate::wire::{self, FrameReader, FromWorker, ToWorker, WireOutcome};
use crate::{Host, Limits, SyncHost};

/// How long past its limit a call may take before its worker is killed. The
/// worker's own interrupt handler usually ends the call first, with the
/// same error; the kill is for native work QuickJS cannot interrupt.
const GRACE: Duration = Duration::from_millis(100);

/// The first fd number a worker finds the spec memfds at.
pub(crate) const FIRST_SPEC_FD: i32 = 3;

/// The packed specs in sealed memfds, shared by every worker.
pub(crate) struct SharedSpecs {
    fds: Vec<OwnedFd>,
    /// `(name, global, bytes)` per spec, in order; fd `FIRST_SPEC_FD + i` in a worker.
    pub(crate) index: Vec<(String, crate::SpecGlobal, usize)>,
}

impl SharedSpecs {
    /// Copies each packed spec into a memfd and seals it: no one, including a
    /// compromised worker, can change, grow or shrink it afterwards.
    pub(crate) fn new(specs: &[NamedSpec]) -> Result<SharedSpecs, String> {
        let mut fds = Vec::new();
        let mut index = Vec::new();
        for s in specs {
            let bytes = s.bytes.bytes();
            let name = std::ffi::CString::new(format!("codemode-spec-{}", s.name)).map_err(|e| e.to_string())?;
            // SAFETY: plain syscalls on an fd we own; errors are checked.
            let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
            if fd < 0 {
                return Err(format!("memfd_create failed: {}", std::io::Error::last_os_error()));
            }
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let mut file = std::fs::File::from(fd.try_clone().map_err(|e| e.to_string())?);
            std::io::Write::write_all(&mut file, bytes).map_err(|e| format!("writing a spec memfd failed: {e}"))?;
            let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
            if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
                return Err(format!("sealing a spec memfd failed: {}", std::io::Error::last_os_error()));
            }
            fds.push(fd);
            index.push((s.name.clone(), s.global, bytes.len()));
        }
        Ok(SharedSpecs { fds, index })
    }
}

/// One running worker process.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: FrameReader<ChildStdout>,
}

impl Worker {
    fn kill(mut self) {
        let _ = self.child.start_kill();
        // Reap it in the background so it does not linger as a zombie.
        tokio::spawn(async move {
            let _ = self.child.wait().await;
        });
    }

    fn rss(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib * 1024)
    }
}

struct Inner {
    name: &'static str,
    command: WorkerCommand,
    specs: Arc<SharedSpecs>,
    idle: Mutex<Vec<Worker>>,
    /// One permit per idle worker.
    ready: Semaphore,
}

/// A pool of `size` worker processes.
pub(crate) struct ProcessPool {
    inner: Arc<Inner>,
}

impl ProcessPool {
    /// Starts `size` workers and waits until each is ready.
    pub(crate) async fn start(
        name: &'static str,
        size: usize,
        command: WorkerCommand,
        specs: Arc<SharedSpecs>,
    ) -> Result<ProcessPool, String> {
        let inner = Arc::new(Inner { name, command, specs, idle: Mutex::new(Vec::new()), ready: Semaphore::new(0) });
        // Start them side by side: each start is mostly waiting on exec.
        let mut starts = tokio::task::JoinSet::new();
        for _ in 0..size.max(1) {
            starts.spawn(spawn_worker(inner.clone()));
        }
        let mut workers = Vec::new();
        while let Some(w) = starts.join_next().await {
            workers.push(w.map_err(|e| format!("starting a sandbox worker panicked: {e}"))??);
        }
        let n = workers.len();
        inner.idle.lock().unwrap_or_else(|e| e.into_inner()).extend(workers);
        inner.ready.add_permits(n);
        Ok(ProcessPool { inner })
    }

    /// RSS of each idle worker.
    pub(crate) fn idle_rss(&self) -> Vec<u64> {
        self.inner.idle.lock().unwrap_or_else(|e| e.into_inner()).iter().filter_map(Worker::rss).collect()
    }

    /// Runs one call on an idle worker. The worker is killed (and replaced)
    /// when the call passes its deadline, when the future is dropped, and
    /// when it misbehaves.
    ///
    /// The deadline moves later by the time `clock` is held during the call
    /// and never passes while it is held; the worker is told of each change
    /// (`Hold`/`Release`) and extends its own, tighter deadline only by the
    /// held time its code spent idle. Only the host's clock moves the kill.
    pub(crate) async fn run(
        &self,
        msg: ToWorker,
        limits: &Limits,
        host: Option<Arc<dyn Host>>,
        catalog: Option<Arc<dyn SyncHost>>,
        clock: &Clock,
    ) -> Result<WireOutcome, String> {
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started + limits.timeout + GRACE);
        let permit = match tokio::time::timeout_at(deadline, self.inner.ready.acquire()).await {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => return Err("the sandbox has shut down".into()),
            Err(_) => return Ok(timed_out(limits)),
        };
        permit.forget();
        let worker = self.inner.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let Some(worker) = worker else {
            return Err("no sandbox worker was available (pool bookkeeping error)".into());
        };
        // Whatever happens below — return, error, or the future being dropped
        // mid-call — the checkout decides whether the worker goes back to the
        // pool or is killed and replaced.
        let mut checkout = Checkout { worker: Some(worker), inner: self.inner.clone(), reusable: false };
        let baseline = clock.paused_total();
        let result = tokio::select! {
            r = converse(checkout.worker.as_mut().expect("checked out"), msg, limits, host, catalog, clock) => Some(r),
            _ = clock.expired(deadline, baseline) => None,
        };
        match result {
            None => Ok(timed_out(limits)),
            Some(Err(e)) => {
                Err(format!("the sandbox worker failed: {e}; the call was stopped and the worker replaced"))
            }
            Some(Ok(outcome)) => {
                checkout.reusable = !outcome.retire;
                Ok(outcome)
            }
        }
    }
}

fn timed_out(limits: &Limits) -> WireOutcome {
    WireOutcome {
        result: Err(timeout_error(limits.timeout)),
        console: vec![],
        console_dropped: 0,
        host_calls: 0,
        retire: true,
    }
}

struct Checkout {
    worker: Option<Worker>,
    inner: Arc<Inner>,
    reusable: bool,
}

impl Drop for Checkout {
    fn drop(&mut self) {
        let Some(worker) = self.worker.take() else { return };
        if self.reusable {
            self.inner.idle.lock().unwrap_or_else(|e| e.into_inner()).push(worker);
            self.inner.ready.add_permits(1);
            return;
        }
        worker.kill();
        replace(self.inner.clone());
    }
}

/// Starts a replacement in the background, retrying with backoff while the
/// program cannot be started.
fn replace(inner: Arc<Inner>) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
    handle.spawn(async move {
        let mut backoff = Duration::from_millis(50);
        loop {
            match spawn_worker(inner.clone()).await {
                Ok(w) => {
                    inner.idle.lock().unwrap_or_else(|e| e.into_inner()).push(w);
                    inner.ready.add_permits(1);
                    return;
                }
                Err(e) => {
                    tracing::error!(pool = inner.name, error = %e, "could not start a sandbox worker; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    });
}

/// Starts one worker: empty environment, the spec memfds at fds 3.., its
/// own process group, killed if the host dies; then sends `Init` and waits
/// for `Ready` (sent after the worker has locked itself down).
async fn spawn_worker(inner: Arc<Inner>) -> Result<Worker, String> {
    let started = Instant::now();
    let mut cmd = tokio::process::Command::new(&inner.command.program);
    cmd.args(&inner.command.args)
        .env_clear()
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true);
    let fds: Vec<i32> = inner.specs.fds.iter().map(|f| f.as_raw_fd()).collect();
    // SAFETY: between fork and exec only async-signal-safe calls (dup2,
    // fcntl, prctl) on fds that are open in the parent.
    unsafe {
        cmd.pre_exec(move || {
            for (i, &fd) in fds.iter().enumerate() {
                let target = FIRST_SPEC_FD + i as i32;
                if fd == target {
                    // dup2 onto itself keeps CLOEXEC: clear it instead.
                    if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(fd, target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| format!("could not start {}: {e}", inner.command.program.display()))?;
    let mut stdin = child.stdin.take().ok_or("worker has no stdin")?;
    let mut stdout = FrameReader::new(child.stdout.take().ok_or("worker has no stdout")?);
    let init = ToWorker::Init {
        specs: inner
            .specs
            .index
            .iter()
            .enumerate()
            .map(|(i, (name, global, len))| (name.clone(), *global, FIRST_SPEC_FD + i as i32, *len))
            .collect(),
    };
    let handshake = async {
        wire::write_frame_async(&mut stdin, &init).await.map_err(|e| e.to_string())?;
        match stdout.read::<FromWorker>().await {
            Ok(FromWorker::Ready) => Ok(()),
            Ok(other) => Err(format!("unexpected first message {other:?}")),
            Err(e) => Err(format!("no ready message: {e}")),
        }
    };
    match tokio::time::timeout(Duration::from_secs(10), handshake).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let _ = child.start_kill();
            return Err(format!("sandbox worker did not start: {e}"));
        }
        Err(_) => {
            let _ = child.start_kill();
            return Err("sandbox worker did not start within 10 s".into());
        }
    }
    tracing::debug!(
        pool = inner.name,
        pid = child.id(),
        elapsed_us = started.elapsed().as_micros() as u64,
        "sandbox worker ready"
    );
    Ok(Worker { child, stdin, stdout })
}

/// Sends the call and serves the worker's host calls until it is done,
/// telling it whenever `clock` is held or released.
async fn converse(
    w: &mut Worker,
    msg: ToWorker,
    limits: &Limits,
    host: Option<Arc<dyn Host>>,
    catalog: Option<Arc<dyn SyncHost>>,
    clock: &Clock,
) -> Result<WireOutcome, String> {
    wire::write_frame_async(&mut w.stdin, &msg).await.map_err(|e| format!("sending the call: {e}"))?;
    let mut held = clock.subscribe();
    // What the worker was last told (it starts each call released).
    let mut told = false;
    if *held.borrow_and_update() {
        wire::write_frame_async(&mut w.stdin, &ToWorker::Hold).await.map_err(|e| died(w, e))?;
        told = true;
    }
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<ToWorker>();
    let mut tasks = tokio::task::JoinSet::new();
    let mut host_calls = 0u32;
    // The runner admits reports at most every MIN_INTERVAL; the pipe may
    // bunch them up, so the host allows half that, and the same count.
    let mut progress = crate::progress::Gate::new(crate::progress::MIN_INTERVAL / 2);
    loop {
        tokio::select! {
            frame = w.stdout.read::<FromWorker>() => {
                match frame.map_err(|e| died(w, e))? {
                    FromWorker::Done(outcome) => return Ok(outcome),
                    FromWorker::HostCall { id, client, method, args } => {
                        // The worker counts too; this holds even if it lies.
                        host_calls += 1;
                        if host_calls > limits.max_host_calls {
                            return Err(format!("the worker made more than {} host calls", limits.max_host_calls));
                        }
                        let host = host.clone().ok_or("the worker made a host call in a call without a host")?;
                        let tx = done_tx.clone();
                        tasks.spawn(async move {
                            let c = crate::sandbox::host_call(host.as_ref(), id, &client, &method, &args).await;
                            let _ = tx.send(ToWorker::Completion { id: c.id, ok: c.ok, json: c.json });
                        });
                    }
                    FromWorker::SyncCall { method, args } => {
                        let catalog = catalog.clone().ok_or("the worker asked the catalog in a call without one")?;
                        let reply = tokio::task::spawn_blocking(move || crate::sandbox::sync_call(catalog.as_ref(), &method, &args))
                            .await
                            .map_err(|e| e.to_string())?;
                        let (ok, json) = match reply { Ok(j) => (true, j), Err(j) => (false, j) };
                        wire::write_frame_async(&mut w.stdin, &ToWorker::SyncReply { ok, json }).await.map_err(|e| e.to_string())?;
                    }
                    FromWorker::Progress { message, fraction } => {
                        // An honest runner never sends more than the cap.
                        if progress.seen() >= u64::from(crate::progress::MAX_REPORTS) {
                            return Err(format!("the worker sent more than {} progress reports", crate::progress::MAX_REPORTS));
                        }
                        let host = host.as_ref().ok_or("the worker reported progress in a call without a host")?;
                        if let Some(report) = progress.admit(std::time::Instant::now(), &message, fraction) {
                            host.progress(report);
                        }
                    }
                    FromWorker::Ready => return Err("the worker sent an unexpected message".into()),
                }
            }
            Some(reply) = done_rx.recv() => {
                wire::write_frame_async(&mut w.stdin, &reply).await.map_err(|e| died(w, e))?;
            }
            Ok(()) = held.changed() => {
                let now = *held.borrow_and_update();
                if now != told {
                    told = now;
                    let msg = if now { ToWorker::Hold } else { ToWorker::Release };
                    wire::write_frame_async(&mut w.stdin, &msg).await.map_err(|e| died(w, e))?;
                }
            }
        }
    }
}

/// Why a worker's pipe failed: if it was killed by a signal, say which.
fn died(w: &mut Worker, e: std::io::Error) -> String {
    use std::os::unix::process::ExitStatusExt;
    match w.child.try_wait() {
        Ok(Some(status)) => match status.signal() {
            Some(libc::SIGXCPU) => "it ran out of CPU time (RLIMIT_CPU)".into(),
            Some(libc::SIGSYS) => "it made a forbidden system call (seccomp)".into(),
            Some(libc::SIGSEGV) => "it crashed (SIGSEGV)".into(),
            Some(s) => format!("it was killed by signal {s}"),
            None => format!("it exited ({status})"),
        },
        _ => format!("its pipe failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec_view::SpecBytes;

    #[test]
    fn spec_memfds_are_sealed_against_every_change() {
        let spec = NamedSpec {
            name: "demo".into(),
            bytes: SpecBytes::Shared(vec![7u8; 4096].into()),
            global: crate::SpecGlobal::Specs,
        };
        let shared = SharedSpecs::new(&[spec]).unwrap();
        let fd = shared.fds[0].as_raw_fd();
        // SAFETY: plain syscalls on an fd we own; results are only inspected.
        unsafe {
            let byte = 0u8;
            assert_eq!(libc::pwrite(fd, (&byte as *const u8).cast(), 1, 0), -1, "a write went through");
            assert_eq!(libc::ftruncate(fd, 0), -1, "it shrank");
            assert_eq!(libc::ftruncate(fd, 1 << 20), -1, "it grew");
            let map =
                libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0);
            assert_eq!(map, libc::MAP_FAILED, "a writable shared mapping was allowed");
            let seals = libc::fcntl(fd, libc::F_GET_SEALS);
            assert_ne!(seals & libc::F_SEAL_SEAL, 0, "the seals themselves can be changed");
        }
    }
}
