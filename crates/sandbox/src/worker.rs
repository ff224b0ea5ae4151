//! The sandbox worker process: one call at a time, read from stdin, answered
//! on stdout, in a runtime of its own per call.
//!
//! A program becomes a worker by calling [`main`] (the `codemode` binary
//! does so when started with its hidden worker argument). Before it reads
//! its first call the worker maps the spec memfds it inherited and locks
//! itself down (see `lockdown`): after that it can read and write its pipes,
//! allocate memory and read the clock — nothing else.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::FromRawFd;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::engine::{Bridge, Completion};
use crate::runner;
use crate::spec_view::{NamedSpec, SpecBytes};
use crate::wire::{self, FromWorker, ToWorker, WireOutcome};

/// Grow past this much above the post-start peak and the worker asks to be
/// replaced after its call: what a memory-hungry call leaves fragmented in
/// the allocator goes back to the system with the process.
const RETIRE_ABOVE_BYTES: i64 = 24 * 1024 * 1024;

/// Runs the worker until stdin closes. Never returns normally.
pub fn main() -> ! {
    let code = match serve() {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(io::stderr(), "codemode sandbox worker: {e}");
            1
        }
    };
    std::process::exit(code)
}

struct Pipes {
    input: File,
    output: File,
}

fn serve() -> Result<(), String> {
    // SAFETY: fds 0 and 1 are the pipes the host gave us, owned by nobody else.
    let pipes = Rc::new(std::cell::RefCell::new(Pipes {
        input: unsafe { File::from_raw_fd(0) },
        output: unsafe { File::from_raw_fd(1) },
    }));
    let init: ToWorker =
        wire::read_frame(&mut pipes.borrow_mut().input).map_err(|e| format!("no init message: {e}"))?;
    let ToWorker::Init { specs } = init else {
        return Err("the first message was not Init".into());
    };
    let mut named = Vec::new();
    for (name, global, fd, len) in specs {
        named.push(NamedSpec { name, global, bytes: SpecBytes::Static(map_spec(fd, len)?) });
    }
    // The random source of `crypto.getRandomValues`, tried once while files
    // can still be opened: getrandom(2) is on the seccomp allow-list, so the
    // crate settles on it here and never needs its /dev/urandom fallback.
    getrandom::fill(&mut [0u8; 16]).map_err(|e| format!("no random source: {e}"))?;
    crate::lockdown::apply().map_err(|e| format!("lockdown failed: {e}"))?;
    let baseline = peak_rss_bytes();
    send(&pipes, &FromWorker::Ready)?;
    loop {
        let msg: ToWorker = match wire::read_frame(&mut pipes.borrow_mut().input) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(format!("reading a call: {e}")),
        };
        let bridge: Rc<dyn Bridge> = Rc::new(PipeBridge::new(pipes.clone()));
        let cancel = Arc::new(AtomicBool::new(false));
        let (mut outcome, teardown) = match msg {
            ToWorker::Search { code, limits, visible, single, catalog } => {
                let visible = visible.iter().filter_map(|&i| named.get(i).cloned()).collect();
                let job = runner::SearchJob { code: &code, limits: &limits, visible, single, catalog };
                runner::search(job, bridge, cancel)
            }
            ToWorker::Execute { code, limits, env } => runner::execute(&code, &limits, &env, bridge, cancel),
            ToWorker::SelfTest => (self_test(), runner::Teardown(None)),
            // Sent for the previous call before the host read its answer
            // (a host call it never awaited finished, the clock changed):
            // they precede the next call on the pipe and belong to no call.
            ToWorker::Completion { .. } | ToWorker::Hold | ToWorker::Release => continue,
            other => return Err(format!("unexpected message between calls: {other:?}")),
        };
        outcome.retire = peak_rss_bytes() - baseline > RETIRE_ABOVE_BYTES;
        let retire = outcome.retire;
        send(&pipes, &FromWorker::Done(outcome))?;
        drop(teardown);
        give_back_free_memory();
        if retire {
            return Ok(());
        }
    }
}

fn send(pipes: &Rc<std::cell::RefCell<Pipes>>, msg: &FromWorker) -> Result<(), String> {
    wire::write_frame(&mut pipes.borrow_mut().output, msg).map_err(|e| format!("writing to the host: {e}"))
}

/// Maps an inherited, sealed spec memfd read-only for the life of the process.
fn map_spec(fd: i32, len: usize) -> Result<&'static [u8], String> {
    if len == 0 {
        return Ok(&[]);
    }
    // SAFETY: `fd` was set up by the host (see pool::spawn_worker) and is
    // sealed against writes, so the mapping cannot change under us. It is
    // never unmapped, hence 'static.
    let file = unsafe { File::from_raw_fd(fd) };
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| format!("mapping spec fd {fd}: {e}"))?;
    if map.len() != len {
        return Err(format!("spec fd {fd} holds {} bytes, expected {len}", map.len()));
    }
    drop(file);
    let map: &'static memmap2::Mmap = Box::leak(Box::new(map));
    Ok(&map[..])
}

/// Returns the allocator's free pages to the system after a call (off the
/// answer's path), so an idle worker stays small.
fn give_back_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim has no preconditions; madvise is allowed by the filter.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn peak_rss_bytes() -> i64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss * 1024
}

/// Host calls over the pipe.
struct PipeBridge {
    pipes: Rc<std::cell::RefCell<Pipes>>,
    /// When the host's clock was last held, while it is (`Hold` seen, no
    /// `Release` since). Only the host sends these; this side can only
    /// credit what the host said, and the host's kill does not depend on it.
    held_since: Cell<Option<Instant>>,
    /// Held time of this call's ended holds.
    held_before: Cell<Duration>,
}

impl PipeBridge {
    fn new(pipes: Rc<std::cell::RefCell<Pipes>>) -> Self {
        PipeBridge { pipes, held_since: Cell::new(None), held_before: Cell::new(Duration::ZERO) }
    }

    /// Applies a `Hold` (`true`) or `Release` (`false`) from the host.
    fn set_held(&self, held: bool) {
        match (held, self.held_since.get()) {
            (true, None) => self.held_since.set(Some(Instant::now())),
            (false, Some(since)) => {
                self.held_before.set(self.held_before.get() + since.elapsed());
                self.held_since.set(None);
            }
            _ => {}
        }
    }
}

impl Bridge for PipeBridge {
    fn start(&self, id: u64, client: &str, method: &str, args: String) -> Result<(), String> {
        send(&self.pipes, &FromWorker::HostCall { id, client: client.into(), method: method.into(), args })
    }

    fn progress(&self, report: crate::ProgressReport) -> Result<(), String> {
        send(&self.pipes, &FromWorker::Progress { message: report.message, fraction: report.fraction })
    }

    fn next(&self, until: Instant) -> Result<Option<Completion>, String> {
        let wait = until.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd { fd: 0, events: libc::POLLIN, revents: 0 };
        let ms = wait.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted { Ok(None) } else { Err(e.to_string()) };
        }
        if n == 0 {
            return Ok(None);
        }
        match wire::read_frame::<ToWorker>(&mut self.pipes.borrow_mut().input) {
            Ok(ToWorker::Completion { id, ok, json }) => Ok(Some(Completion { id, ok, json })),
            // The event loop looks at the clock again after every return.
            Ok(ToWorker::Hold) => {
                self.set_held(true);
                Ok(None)
            }
            Ok(ToWorker::Release) => {
                self.set_held(false);
                Ok(None)
            }
            Ok(other) => Err(format!("unexpected message during a call: {other:?}")),
            Err(e) => Err(format!("reading a completion: {e}")),
        }
    }

    fn held(&self) -> bool {
        self.held_since.get().is_some()
    }

    fn held_total(&self) -> Duration {
        self.held_before.get() + self.held_since.get().map_or(Duration::ZERO, |s| s.elapsed())
    }

    fn sync_call(&self, method: &str, args: String) -> Result<String, String> {
        send(&self.pipes, &FromWorker::SyncCall { method: method.into(), args })
            .map_err(|e| serde_json::json!({ "message": e }).to_string())?;
        let reply = loop {
            match wire::read_frame::<ToWorker>(&mut self.pipes.borrow_mut().input) {
                // Not credited: the code is not waiting for a completion.
                Ok(ToWorker::Hold) => self.set_held(true),
                Ok(ToWorker::Release) => self.set_held(false),
                other => break other,
            }
        };
        match reply {
            Ok(ToWorker::SyncReply { ok: true, json }) => Ok(json),
            Ok(ToWorker::SyncReply { ok: false, json }) => Err(json),
            Ok(other) => Err(serde_json::json!({ "message": format!("unexpected reply {other:?}") }).to_string()),
            Err(e) => Err(serde_json::json!({ "message": format!("reading a reply: {e}") }).to_string()),
        }
    }
}

/// Tries what the lockdown must forbid; the result lists what was possible.
fn self_test() -> WireOutcome {
    let report = crate::lockdown::probe();
    let json = serde_json::to_string(&report).unwrap_or_default();
    WireOutcome {
        result: Ok(wire::RawValue::Json(json)),
        console: vec![],
        console_dropped: 0,
        host_calls: 0,
        retire: false,
    }
}
