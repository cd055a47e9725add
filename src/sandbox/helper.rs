//! The two hidden subcommands that run in a freshly exec'd, single-threaded
//! process.
//!
//! `__sandbox` builds a sandbox in three processes: the helper (the host's
//! root, in a private mount namespace it prepares: read-only host, fresh
//! tmpfs folders, a private `/dev`, the idmapped base), a child that makes
//! the user namespace (its maps written by the helper) and, once the helper
//! is done, the other namespaces (so every mount the helper made is locked
//! inside), and that child's child, PID 1 of the sandbox, which mounts the
//! kernel views of its own namespaces and the fixture's overlay, then holds
//! the sandbox until its control pipe closes or the runner kills it.
//!
//! Once the sandbox is built, the helper stays in its cgroups and forks
//! every step there ([`super::spawner`]); `__enter` asks it, or, for an
//! interactive shell on a terminal, joins a running sandbox itself (the
//! cgroups, then by pidfd, so a reused pid cannot be joined, its
//! namespaces) as its root and runs the step there, under the seccomp
//! filter, forwarding nothing and waiting: a SIGTERM to the step's process
//! group reaches the step itself, whose traps run during the grace period.

use std::ffi::{CString, NulError, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::signal::{sigaction, signal, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{chdir, chroot, execvp, fork, getppid, ForkResult, Pid};

use super::cgroup::{self, CgroupError};
use super::linux::{apply_all, Linux, SetupError};
use super::ops::{host_ops, inner_ops, SandboxSpec};
use super::seccomp::{self, SeccompError};
use super::userns;

/// Why the helper, its child, PID 1 or `__enter` could not do their part.
/// They say it as an `error: ...` line to the runner, which reads it back
/// as [`super::SandboxError::Setup`], or on stderr (`__enter`).
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// A system call, as named (`prctl`, `fork`, `unshare(user)`).
    #[error("{call}: {errno}")]
    Call { call: &'static str, errno: Errno },
    /// The first `unshare`, which only root may make.
    #[error("unshare: {0} (running recipes needs root)")]
    NotRoot(Errno),
    #[error("the runner is gone")]
    RunnerGone,
    #[error("the sandbox child stopped before making its user namespace")]
    ChildStopped,
    /// The pipe that tells the child to go on.
    #[error("sandbox child: {0}")]
    Child(std::io::Error),
    #[error("cannot write the id maps of the sandbox: {0}")]
    Maps(std::io::Error),
    #[error("cannot open the sandbox's user namespace: {0}")]
    UserNamespace(std::io::Error),
    #[error("cannot become root in the sandbox: {0}")]
    Root(Errno),
    #[error("cannot join the sandbox: {0}")]
    Join(Errno),
    #[error("the sandbox is gone: {0}")]
    Gone(std::io::Error),
    #[error("the sandbox is gone (its pid now names another process)")]
    PidReused,
    /// The kernel's words only (a pipe, `/dev/null`).
    #[error("{0}")]
    Io(std::io::Error),
    /// The kernel's words only (`dup2`, a signal's action).
    #[error("{0}")]
    Errno(Errno),
    /// An argument of the step's program.
    #[error("{0}")]
    Nul(NulError),
    #[error(transparent)]
    Cgroup(CgroupError),
    #[error(transparent)]
    Setup(SetupError),
    #[error(transparent)]
    Seccomp(SeccompError),
    /// Asking the helper to fork a step ([`super::spawner`]).
    #[error("{0}")]
    Spawner(String),
}

/// A `map_err` adapter for a system call named `call`.
fn call(call: &'static str) -> impl FnOnce(Errno) -> HelperError {
    move |errno| HelperError::Call { call, errno }
}

/// Capabilities no step needs, even inside its user namespace: dropped
/// from the bounding set of every step.
const DROPPED_CAPS: &[caps::Capability] = &[
    caps::Capability::CAP_SYS_MODULE,
    caps::Capability::CAP_SYS_RAWIO,
    caps::Capability::CAP_SYS_TIME,
    caps::Capability::CAP_AUDIT_CONTROL,
    caps::Capability::CAP_MAC_OVERRIDE,
    caps::Capability::CAP_MAC_ADMIN,
    caps::Capability::CAP_SYSLOG,
    caps::Capability::CAP_WAKE_ALARM,
];

/// One line to the runner; a runner that stopped listening is not an error
/// worth a panic.
fn say(line: &str) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

pub(super) fn die_with_parent() -> nix::Result<()> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
}

/// `recipes __sandbox --spec JSON [--spawner FD]`. Prints `pid N` (PID 1's
/// pid on the host), then `ready` or `error: ...`; PID 1 exits when its
/// stdin closes. With `FD` (one end of the runner's socket pair), the
/// helper then forks the steps `__enter` asks for.
pub fn sandbox_main(spec: &str, spawner: Option<RawFd>) -> i32 {
    let spec: SandboxSpec = match serde_json::from_str(spec) {
        Ok(spec) => spec,
        Err(e) => {
            say(&format!("error: invalid sandbox spec: {e}"));
            return 2;
        }
    };
    let outer = spawner
        .map(super::spawner::adopt)
        .transpose()
        .and_then(|channel| outer(&spec, channel));
    match outer {
        Ok(code) => code,
        Err(message) => {
            say(&format!("error: {message}"));
            1
        }
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), HelperError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(call("pipe"))
}

pub(super) fn wait_code(child: Pid) -> i32 {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
            Err(_) => return 1,
        }
    }
}

/// The helper: host root, private mount namespace; then the steps' spawner.
fn outer(spec: &SandboxSpec, spawner: Option<OwnedFd>) -> Result<i32, HelperError> {
    die_with_parent().map_err(call("prctl"))?;
    if getppid().as_raw() != spec.parent {
        return Err(HelperError::RunnerGone);
    }
    if let Some(cgroups) = &spec.cgroups {
        cgroup::join(&cgroups.join).map_err(HelperError::Cgroup)?;
        // A preference: a kernel that will not move this task there (a
        // real-time one, into a v1 `cpu` folder without a real-time budget)
        // leaves the sandbox unweighted.
        if let Some(dir) = &cgroups.weight_dir {
            let _ = cgroup::join(std::slice::from_ref(dir));
        }
    }
    // A session keyring of its own: the runner's (the host root's) is out
    // of reach.
    // SAFETY: keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL) takes no pointers
    // but a null name.
    unsafe { libc::syscall(libc::SYS_keyctl, 1, std::ptr::null::<libc::c_char>()) };
    unshare(CloneFlags::CLONE_NEWNS).map_err(HelperError::NotRoot)?;
    // Built once: every step the helper forks inherits it.
    let filter = seccomp::filter().map_err(HelperError::Seccomp)?;
    let (up_r, up_w) = pipe()?;
    let (down_r, down_w) = pipe()?;
    let _ = std::io::stdout().flush();
    // SAFETY: this process is single-threaded (freshly exec'd), so the
    // child may run arbitrary code after fork.
    match unsafe { fork() }.map_err(call("fork"))? {
        ForkResult::Child => {
            drop(up_r);
            drop(down_w);
            // Nothing inside may ask for steps.
            drop(spawner);
            let code = match namespaces(spec, up_w, down_r) {
                Ok(code) => code,
                Err(message) => {
                    say(&format!("error: {message}"));
                    1
                }
            };
            std::process::exit(code);
        }
        ForkResult::Parent { child } => {
            drop(up_w);
            drop(down_r);
            let prepared = prepare(spec, child, up_r);
            if let Err(message) = prepared {
                // The child sees the pipe close and gives up.
                drop(down_w);
                let _ = wait_code(child);
                return Err(message);
            }
            let mut down = std::fs::File::from(down_w);
            down.write_all(b"g").map_err(HelperError::Child)?;
            drop(down);
            Ok(match spawner {
                Some(channel) => super::spawner::serve(channel, child, &filter),
                None => wait_code(child),
            })
        }
    }
}

/// The host's side: maps the child's user namespace, then builds the
/// locked part of the sandbox's file system.
fn prepare(spec: &SandboxSpec, child: Pid, up: OwnedFd) -> Result<(), HelperError> {
    let mut byte = [0u8; 1];
    let mut up = std::fs::File::from(up);
    if up.read(&mut byte).map_err(HelperError::Io)? != 1 {
        return Err(HelperError::ChildStopped);
    }
    userns::write_maps(child.as_raw(), spec.ids).map_err(HelperError::Maps)?;
    let userns = std::fs::File::open(format!("/proc/{child}/ns/user"))
        .map_err(HelperError::UserNamespace)?;
    let mut linux = Linux::with_userns(userns.into());
    apply_all(&mut linux, &host_ops(spec)).map_err(HelperError::Setup)
}

/// The child: user namespace, then the others; forks PID 1.
fn namespaces(spec: &SandboxSpec, up: OwnedFd, down: OwnedFd) -> Result<i32, HelperError> {
    die_with_parent().map_err(call("prctl"))?;
    unshare(CloneFlags::CLONE_NEWUSER).map_err(call("unshare(user)"))?;
    std::fs::File::from(up)
        .write_all(b"u")
        .map_err(HelperError::Io)?;
    let mut byte = [0u8; 1];
    if std::fs::File::from(down).read(&mut byte).unwrap_or(0) != 1 {
        return Ok(1);
    }
    userns::become_root().map_err(HelperError::Root)?;
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWCGROUP;
    if !spec.net_host {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    unshare(flags).map_err(call("unshare"))?;
    let _ = std::io::stdout().flush();
    // SAFETY: single-threaded, as above.
    match unsafe { fork() }.map_err(call("fork"))? {
        ForkResult::Child => {
            let code = match pid1(spec) {
                Ok(()) => 0,
                Err(message) => {
                    say(&format!("error: {message}"));
                    1
                }
            };
            std::process::exit(code);
        }
        ForkResult::Parent { child } => {
            say(&format!("pid {child}"));
            Ok(wait_code(child))
        }
    }
}

/// PID 1 of the sandbox: build the inside, say so, then hold it until the
/// runner closes our stdin or kills us. Orphans re-parented here are reaped
/// by the kernel because SIGCHLD is ignored.
fn pid1(spec: &SandboxSpec) -> Result<(), HelperError> {
    die_with_parent().map_err(call("prctl"))?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    apply_all(&mut Linux::default(), &inner_ops(spec)).map_err(HelperError::Setup)?;
    say("ready");
    // Nothing of the runner's stays reachable through /proc/1/fd.
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(HelperError::Io)?;
    nix::unistd::dup2_stdout(null.as_fd()).map_err(HelperError::Errno)?;
    nix::unistd::dup2_stderr(null.as_fd()).map_err(HelperError::Errno)?;
    let _ = nix::unistd::setsid();
    // SAFETY: SIG_IGN for SIGCHLD has no handler code to run.
    unsafe { signal(Signal::SIGCHLD, SigHandler::SigIgn) }.map_err(HelperError::Errno)?;
    let mut buf = [0u8; 64];
    let mut stdin = std::io::stdin();
    while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
    Ok(())
}

/// What `__enter` is asked to do.
pub struct EnterRequest<'a> {
    /// PID 1 of the sandbox, as the host sees it, and its start time (in
    /// clock ticks after boot), which a reused pid would not have.
    pub pid: i32,
    pub start: u64,
    pub cgroups: &'a [PathBuf],
    pub net_host: bool,
    pub cwd: &'a Path,
    pub chroot: Option<&'a Path>,
    /// No `no_new_privs`: the step (a booted host and what runs in it) may
    /// use set-user-ID programs, which give at most the sandbox's root.
    pub allow_setuid: bool,
    pub argv: &'a [OsString],
    /// The runner's end of the helper's socket pair: the helper forks the
    /// step, in the cgroups already.
    pub spawner: Option<RawFd>,
}

/// `recipes __enter ...`: runs `ARGV` in the sandbox, forked by its helper
/// (or, on a terminal, joining it from here).
pub fn enter_main(request: &EnterRequest) -> i32 {
    let terminal = nix::unistd::isatty(std::io::stdin()).unwrap_or(false);
    let result = request
        .spawner
        .map(super::spawner::adopt)
        .transpose()
        .and_then(|channel| match channel.filter(|_| !terminal) {
            Some(channel) => super::spawner::ask(channel, request),
            None => enter(request),
        });
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("recipes: {message}");
            125
        }
    }
}

/// The start time of a process (field 22 of its `stat`).
pub fn start_time(pid: i32) -> Option<u64> {
    start_time_in(Path::new("/proc"), pid)
}

/// The same, read from the host's proc mounted at `proc`.
fn start_time_in(proc: &Path, pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(proc.join(pid.to_string()).join("stat")).ok()?;
    stat.rsplit_once(") ")?.1.split(' ').nth(19)?.parse().ok()
}

/// A pidfd for `pid`, if it is still the process that started at `start`.
pub fn pidfd(pid: i32, start: u64) -> Result<OwnedFd, HelperError> {
    pidfd_in(Path::new("/proc"), pid, start)
}

/// The same, with the host's proc mounted at `proc`.
fn pidfd_in(proc: &Path, pid: i32, start: u64) -> Result<OwnedFd, HelperError> {
    let fd = pidfd_of(Pid::from_raw(pid)).map_err(HelperError::Gone)?;
    if start_time_in(proc, pid) != Some(start) {
        return Err(HelperError::PidReused);
    }
    Ok(fd)
}

/// A pidfd for `pid` (a child of the caller's, or any process).
pub fn pidfd_of(pid: Pid) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open(2) takes no pointers; the descriptor is owned below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

extern "C" fn ignore(_: libc::c_int) {}

/// The signals the runner sends a step's group, which reach the step.
pub(super) const FORWARDED: [Signal; 4] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// Joins the namespaces of the sandbox whose PID 1 is `pid` (started at
/// `start`, as the host's proc mounted at `proc` says) and becomes its
/// root; the next child is in its PID namespace.
pub(super) fn join(proc: &Path, pid: i32, start: u64, net_host: bool) -> Result<(), HelperError> {
    let fd = pidfd_in(proc, pid, start)?;
    let mut flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWCGROUP;
    if !net_host {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    setns(&fd, flags).map_err(HelperError::Join)?;
    drop(fd);
    userns::become_root().map_err(HelperError::Root)
}

/// Joins the sandbox from here, cgroups included, and runs the step.
fn enter(request: &EnterRequest) -> Result<i32, HelperError> {
    // Joined first, while still the host's root: the limits' folders
    // belong to it.
    cgroup::join(request.cgroups).map_err(HelperError::Cgroup)?;
    join(
        Path::new("/proc"),
        request.pid,
        request.start,
        request.net_host,
    )?;
    let args: Vec<CString> = request
        .argv
        .iter()
        .map(|a| CString::new(a.as_encoded_bytes()).map_err(HelperError::Nul))
        .collect::<Result<_, _>>()?;
    let filter = seccomp::filter().map_err(HelperError::Seccomp)?;
    // The step's process group gets the runner's signals; this process
    // outlives them to report how the step ended.
    let handler = SigAction::new(
        SigHandler::Handler(ignore),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in FORWARDED {
        // SAFETY: the handler does nothing, which is async-signal-safe.
        unsafe { sigaction(sig, &handler) }.map_err(HelperError::Errno)?;
    }
    // SAFETY: single-threaded process (freshly exec'd).
    match unsafe { fork() }.map_err(call("fork"))? {
        ForkResult::Child => {
            let step = Step {
                cwd: request.cwd,
                chroot: request.chroot,
                allow_setuid: request.allow_setuid,
            };
            let err = run_in_sandbox(&step, &args, &filter);
            eprintln!("recipes: {err}");
            std::process::exit(127);
        }
        ForkResult::Parent { child } => loop {
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, code)) => return Ok(code),
                Ok(WaitStatus::Signaled(_, sig, _)) => {
                    // Die the same way, so the runner sees the signal.
                    // SAFETY: restoring the default action has no handler.
                    let _ = unsafe { signal(sig, SigHandler::SigDfl) };
                    let _ = nix::sys::signal::raise(sig);
                    return Ok(128 + sig as i32);
                }
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(call("waitpid")(e)),
            }
        },
    }
}

/// Where and how a step runs once in the sandbox.
pub(super) struct Step<'a> {
    pub cwd: &'a Path,
    pub chroot: Option<&'a Path>,
    pub allow_setuid: bool,
}

/// In the forked child: place the process, drop capabilities, filter, exec.
pub(super) fn run_in_sandbox(
    request: &Step,
    args: &[CString],
    filter: &seccompiler::BpfProgram,
) -> String {
    for sig in FORWARDED {
        // SAFETY: restoring the default action has no handler.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
    }
    if let Some(root) = request.chroot {
        if let Err(e) = enter_chroot(root) {
            return format!("cannot enter the chroot {}: {e}", root.display());
        }
    } else if let Err(e) = chdir(request.cwd) {
        return format!("cannot enter {}: {e}", request.cwd.display());
    }
    for cap in DROPPED_CAPS {
        if let Err(e) = caps::drop(None, caps::CapSet::Bounding, *cap) {
            return format!("cannot drop {cap}: {e}");
        }
    }
    let installed = if request.allow_setuid {
        seccomp::install_keeping_setuid(filter)
    } else {
        seccomp::install(filter)
    };
    if let Err(e) = installed {
        return e.to_string();
    }
    match execvp(&args[0], args) {
        Err(e) => format!("cannot run {:?}: {e}", args[0]),
        Ok(never) => match never {},
    }
}

/// A chroot step sees the fixture with proc, sys and dev mounted as a
/// container would have them, in a mount namespace of its own so that the
/// mounts vanish with the step. Its proc is the sandbox's: the host's
/// kernel settings stay out of reach (root here is not the host's root).
fn enter_chroot(root: &Path) -> nix::Result<()> {
    let none: Option<&str> = None;
    unshare(CloneFlags::CLONE_NEWNS)?;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)?;
    let fs = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    for dir in ["proc", "sys", "dev"] {
        let _ = std::fs::create_dir_all(root.join(dir));
    }
    mount(Some("proc"), &root.join("proc"), Some("proc"), fs, none)?;
    let sys = root.join("sys");
    if mount(
        Some("sysfs"),
        &sys,
        Some("sysfs"),
        fs | MsFlags::MS_RDONLY,
        none,
    )
    .is_err()
    {
        // Sharing the host's network, only the host's sysfs can be shown.
        mount(
            Some("/sys"),
            &sys,
            none,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            none,
        )?;
    }
    mount(
        Some(Path::new("/dev")),
        &root.join("dev"),
        none,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none,
    )?;
    chroot(root)?;
    chdir("/")
}

/// The scratch folder a sandboxed step starts in.
pub fn scratch() -> PathBuf {
    PathBuf::from(super::ops::SCRATCH)
}

/// Kills a process through its pidfd (no pid reuse possible).
pub fn kill(pidfd: &OwnedFd) {
    // SAFETY: pidfd_send_signal(2) with a valid descriptor and no siginfo.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
}
