//! What a worker process does to itself before it runs any model code:
//! resource limits, dropping root, no core dumps or ptrace, and a seccomp-bpf
//! allow-list of the few system calls a QuickJS call needs (pipe I/O, memory,
//! clocks, exit). Every other call — open, socket, connect, execve, fork,
//! clone, kill, ptrace … — fails with `EPERM`. So even code that escaped
//! QuickJS would find a process with no credentials, no files, no network
//! and no way to start another process.

use std::collections::BTreeMap;

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

/// The uid/gid a worker started as root drops to (`nobody`).
const NOBODY: libc::uid_t = 65534;

/// Hard ceiling on address space: QuickJS's own per-call limit stops the
/// code long before this; the rlimit bounds native allocations outside it.
pub(crate) const ADDRESS_SPACE_BYTES: u64 = 4 << 30;

/// CPU seconds a worker may use over its whole life (SIGXCPU past it). The
/// host's wall-clock kill ends each call; this bounds a worker whose host
/// went away.
pub(crate) const CPU_SECONDS: u64 = 3600;

/// The system calls a worker may make after lockdown.
fn allowed() -> Vec<i64> {
    let mut calls = vec![
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_ppoll,
        libc::SYS_close,
        libc::SYS_mmap,
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_mprotect,
        libc::SYS_madvise,
        libc::SYS_brk,
        libc::SYS_futex,
        libc::SYS_clock_gettime,
        libc::SYS_clock_getres,
        libc::SYS_gettimeofday,
        libc::SYS_getrandom,
        libc::SYS_getrusage,
        libc::SYS_getpid,
        libc::SYS_getppid,
        libc::SYS_getuid,
        libc::SYS_geteuid,
        libc::SYS_gettid,
        libc::SYS_sched_yield,
        libc::SYS_rt_sigreturn,
        libc::SYS_rt_sigprocmask,
        libc::SYS_sigaltstack,
        libc::SYS_restart_syscall,
        libc::SYS_exit,
        libc::SYS_exit_group,
    ];
    // aarch64 has no `poll` (only `ppoll`, listed above).
    #[cfg(target_arch = "x86_64")]
    calls.push(libc::SYS_poll);
    calls
}

fn target_arch() -> Result<TargetArch, String> {
    if cfg!(target_arch = "x86_64") {
        Ok(TargetArch::x86_64)
    } else if cfg!(target_arch = "aarch64") {
        Ok(TargetArch::aarch64)
    } else {
        Err("seccomp filters are built for x86_64 and aarch64 only; use isolation = \"in-process\"".into())
    }
}

fn set_limit(resource: libc::__rlimit_resource_t, value: u64) -> Result<(), String> {
    let lim = libc::rlimit { rlim_cur: value, rlim_max: value };
    // SAFETY: setrlimit with a valid struct.
    if unsafe { libc::setrlimit(resource, &lim) } != 0 {
        return Err(format!("setrlimit({resource}) failed: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Locks the calling (single-threaded) process down. Irreversible.
pub(crate) fn apply() -> Result<(), String> {
    // Date needs the time zone: read it now, while files can still be opened.
    extern "C" {
        fn tzset();
    }
    // SAFETY: tzset has no preconditions.
    unsafe { tzset() };
    set_limit(libc::RLIMIT_CORE, 0)?;
    set_limit(libc::RLIMIT_FSIZE, 0)?;
    set_limit(libc::RLIMIT_NOFILE, 64)?;
    set_limit(libc::RLIMIT_AS, ADDRESS_SPACE_BYTES)?;
    set_limit(libc::RLIMIT_CPU, CPU_SECONDS)?;
    // SAFETY: plain syscalls; every result is checked.
    unsafe {
        if libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 {
            return Err(format!("PR_SET_DUMPABLE failed: {}", std::io::Error::last_os_error()));
        }
        if libc::geteuid() == 0
            && (libc::setgroups(0, std::ptr::null()) != 0
                || libc::setresgid(NOBODY, NOBODY, NOBODY) != 0
                || libc::setresuid(NOBODY, NOBODY, NOBODY) != 0)
        {
            return Err(format!("dropping root failed: {}", std::io::Error::last_os_error()));
        }
        set_limit(libc::RLIMIT_NPROC, 0)?;
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(format!("PR_SET_NO_NEW_PRIVS failed: {}", std::io::Error::last_os_error()));
        }
    }
    let rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> = allowed().into_iter().map(|nr| (nr, vec![])).collect();
    let filter =
        SeccompFilter::new(rules, SeccompAction::Errno(libc::EPERM as u32), SeccompAction::Allow, target_arch()?)
            .map_err(|e| format!("building the seccomp filter: {e}"))?;
    let program: BpfProgram = filter.try_into().map_err(|e| format!("compiling the seccomp filter: {e:?}"))?;
    seccompiler::apply_filter(&program).map_err(|e| format!("installing the seccomp filter: {e}"))?;
    Ok(())
}

/// Tries, after lockdown, what it must forbid, and reports each attempt as
/// `"denied"` or what happened instead. Nothing here can do harm: an exec
/// names a path that does not exist, and a forked child exits at once.
pub(crate) fn probe() -> BTreeMap<&'static str, String> {
    fn outcome(ret: i64) -> String {
        if ret >= 0 {
            return format!("allowed (returned {ret})");
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EPERM) {
            "denied".into()
        } else {
            format!("not blocked by the filter ({e})")
        }
    }
    let mut report = BTreeMap::new();
    // SAFETY: each call gets valid arguments; results are only inspected.
    unsafe {
        let path = c"/etc/hostname";
        report.insert("open", outcome(libc::open(path.as_ptr(), libc::O_RDONLY) as i64));
        report.insert("openat", outcome(libc::openat(libc::AT_FDCWD, path.as_ptr(), libc::O_RDONLY) as i64));
        report.insert("socket", outcome(libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) as i64));
        report.insert("socket_unix", outcome(libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) as i64));
        let nowhere = c"/nonexistent-codemode-probe";
        let argv = [nowhere.as_ptr(), std::ptr::null()];
        let envp = [std::ptr::null()];
        report.insert("execve", outcome(libc::execve(nowhere.as_ptr(), argv.as_ptr(), envp.as_ptr()) as i64));
        let pid = libc::fork();
        if pid == 0 {
            libc::_exit(0);
        }
        report.insert("fork", outcome(pid as i64));
        report.insert("kill", outcome(libc::kill(libc::getppid(), 0) as i64));
        report.insert("ptrace", outcome(libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0)));
        report.insert("mkdir", outcome(libc::mkdir(c"/tmp/codemode-probe".as_ptr(), 0o700) as i64));
        report.insert("setuid_root", outcome(libc::setuid(0) as i64));
        report.insert("uid", format!("{}", libc::getuid()));
    }
    report
}
