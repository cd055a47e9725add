//! Steps start inside the sandbox's control groups without moving a process
//! into them. Moving a process into a cgroup costs the kernel an RCU grace
//! period (milliseconds, more on a hybrid v1 + v2 host), once per process
//! that moves; a process forked by one already inside is born there for
//! free. So the helper (`__sandbox`), which joined the cgroups once, forks
//! every step: `__enter` asks it and stands in for the step in the runner's
//! process group (its exit status, its signals).
//!
//! The way in is a `SOCK_SEQPACKET` socket pair made by the runner: the
//! helper holds one end, the runner the other, which each `__enter` inherits
//! and nobody else (steps are forked by the helper, never by `__enter`).
//! `__enter` sends one message on it: a byte, and four descriptors: its end
//! of a fresh stream socket (the connection), its stdin, stdout and stderr.
//! An interactive shell (stdin a terminal) joins by itself instead, as
//! `__enter` did before, so the terminal stays its controlling one. On the
//! connection:
//! the request (a little-endian `u32` length, then JSON), then signals to
//! forward (`i32` each) one way and, once the step ended, its status (two
//! `i32`: 0 and the exit code, or 1 and the signal) the other way.
//!
//! The helper forks a server per request, still the host's root in the
//! cgroups: it joins the sandbox's namespaces as `__enter` does, forks the
//! step (a session of its own inside, so that what the step leaves in its
//! group dies with it), forwards signals, and reports how the step ended. A
//! connection closed early (the runner killed `__enter`) kills the step.

use std::ffi::CString;
use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, raise, signal, SigHandler, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use serde::{Deserialize, Serialize};

use super::helper::{self, EnterRequest, HelperError, FORWARDED};

/// What `__enter` asks the helper to run: its own request, with the
/// environment it was given.
#[derive(Debug, Serialize, Deserialize)]
struct Request {
    pid: i32,
    start: u64,
    net_host: bool,
    cwd: PathBuf,
    chroot: Option<PathBuf>,
    allow_setuid: bool,
    argv: Vec<Vec<u8>>,
    env: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A request larger than this is refused (argv and environment).
const MAX_REQUEST: u32 = 16 << 20;

/// A stream or message socket pair, both ends close-on-exec.
pub fn pair(kind: SockType) -> Result<(OwnedFd, OwnedFd), HelperError> {
    socketpair(AddressFamily::Unix, kind, None, SockFlag::SOCK_CLOEXEC).map_err(HelperError::Errno)
}

/// Clears close-on-exec on `fd` in a freshly forked child; async-signal-safe.
pub fn inherit(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: fcntl(2) on a descriptor number, no pointers.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Takes the descriptor `fd` this process inherited, close-on-exec again.
pub fn adopt(fd: RawFd) -> Result<OwnedFd, HelperError> {
    // SAFETY: fcntl(2) on a descriptor number, no pointers.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(HelperError::Io(std::io::Error::last_os_error()));
    }
    // SAFETY: the runner handed this descriptor to this process alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

// ---------------------------------------------------------------- client

/// `__enter` through the helper: sends the request with this process's
/// standard descriptors, forwards the signals the runner sends, and ends
/// as the step ended.
pub fn ask(channel: OwnedFd, request: &EnterRequest) -> Result<i32, HelperError> {
    let (ours, theirs) = pair(SockType::Stream)?;
    // Blocked before the step exists: none is lost, they are read below.
    let mut forwarded = SigSet::empty();
    for sig in FORWARDED {
        forwarded.add(sig);
    }
    forwarded.thread_block().map_err(HelperError::Errno)?;
    let signals = SignalFd::with_flags(&forwarded, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(HelperError::Errno)?;
    let fds = [theirs.as_raw_fd(), 0, 1, 2];
    sendmsg::<()>(
        channel.as_raw_fd(),
        &[IoSlice::new(b"e")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| HelperError::Spawner(format!("cannot reach the sandbox's helper: {e}")))?;
    drop((theirs, channel));
    let mut conn = std::fs::File::from(ours);
    write_request(&mut conn, request)?;
    let status = relay(&mut conn, &signals)?;
    Ok(end_as(status))
}

fn write_request(conn: &mut std::fs::File, request: &EnterRequest) -> Result<(), HelperError> {
    let bytes = |s: &std::ffi::OsStr| s.as_encoded_bytes().to_vec();
    let body = serde_json::to_vec(&Request {
        pid: request.pid,
        start: request.start,
        net_host: request.net_host,
        cwd: request.cwd.to_path_buf(),
        chroot: request.chroot.map(|p| p.to_path_buf()),
        allow_setuid: request.allow_setuid,
        argv: request.argv.iter().map(|a| bytes(a)).collect(),
        env: std::env::vars_os()
            .map(|(k, v)| (bytes(&k), bytes(&v)))
            .collect(),
    })
    .map_err(|e| HelperError::Spawner(e.to_string()))?;
    let mut message = (body.len() as u32).to_le_bytes().to_vec();
    message.extend(body);
    conn.write_all(&message).map_err(HelperError::Io)
}

/// Waits for the step's status, forwarding signals meanwhile.
fn relay(conn: &mut std::fs::File, signals: &SignalFd) -> Result<(i32, i32), HelperError> {
    let mut got = Vec::new();
    loop {
        let mut fds = [
            PollFd::new(conn.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(HelperError::Errno(e)),
            Ok(_) => {}
        }
        let [status, signal] = fds.map(|fd| ready(Some(&fd)));
        if signal {
            if let Ok(Some(info)) = signals.read_signal() {
                // A step already gone reads it no more: nothing to do.
                let _ = conn.write_all(&(info.ssi_signo as i32).to_le_bytes());
            }
        }
        if status {
            let mut buf = [0u8; 8];
            let n = conn.read(&mut buf).map_err(HelperError::Io)?;
            if n == 0 {
                return Err(HelperError::Spawner(
                    "the sandbox's helper ended before the step".into(),
                ));
            }
            got.extend_from_slice(&buf[..n]);
            if got.len() >= 8 {
                let word = |i: usize| i32::from_le_bytes(got[i..i + 4].try_into().expect("4"));
                return Ok((word(0), word(4)));
            }
        }
    }
}

/// The step's exit code, or its signal raised here, so the runner sees the
/// step's own end.
fn end_as((kind, value): (i32, i32)) -> i32 {
    if kind == 0 {
        return value;
    }
    if let Ok(sig) = Signal::try_from(value) {
        // SAFETY: restoring the default action has no handler code.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
        let mut set = SigSet::empty();
        set.add(sig);
        let _ = set.thread_unblock();
        let _ = raise(sig);
    }
    128 + value
}

// ---------------------------------------------------------------- server

/// The helper's loop once the sandbox is built: forks a server per request
/// on `channel` until `child` (the user namespace's first process, whose
/// child is PID 1) ends; returns its exit code.
pub fn serve(channel: OwnedFd, child: Pid, filter: &seccompiler::BpfProgram) -> i32 {
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    let reaper = chld
        .thread_block()
        .and_then(|()| SignalFd::with_flags(&chld, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK));
    let Ok(reaper) = reaper else {
        return helper::wait_code(child);
    };
    let mut channel = Some(channel);
    loop {
        if let Some(code) = reap(child) {
            return code;
        }
        let mut fds = vec![PollFd::new(reaper.as_fd(), PollFlags::POLLIN)];
        if let Some(c) = &channel {
            fds.push(PollFd::new(c.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return helper::wait_code(child),
        }
        let readable = ready(fds.get(1));
        drop(fds);
        let _ = reaper.read_signal();
        if readable {
            let open = channel
                .as_ref()
                .is_some_and(|c| accept(c.as_fd(), &reaper, filter));
            if !open {
                // Every sender is gone: only PID 1's end is awaited now.
                channel = None;
            }
        }
    }
}

/// Reaps the servers that ended; `child`'s exit code once it ended.
fn reap(child: Pid) -> Option<i32> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == child => return Some(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => return Some(128 + sig as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Receives one request and forks its server; false once the channel is
/// closed.
fn accept(channel: BorrowedFd, reaper: &SignalFd, filter: &seccompiler::BpfProgram) -> bool {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let received = match recvmsg::<()>(
        channel.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    ) {
        Ok(msg) => msg,
        Err(Errno::EINTR | Errno::EAGAIN) => return true,
        Err(_) => return false,
    };
    if received.bytes == 0 {
        return false;
    }
    let mut fds: Vec<OwnedFd> = Vec::new();
    for cmsg in received.cmsgs().into_iter().flatten() {
        if let ControlMessageOwned::ScmRights(raw) = cmsg {
            // SAFETY: descriptors the kernel just installed for us.
            fds.extend(
                raw.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    let Ok([conn, stdin, stdout, stderr]) = <[OwnedFd; 4]>::try_from(fds) else {
        return true;
    };
    let _ = std::io::stdout().flush();
    // SAFETY: the helper is single-threaded (freshly exec'd).
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            // The channel and the reaper are the helper's alone.
            // SAFETY: closing descriptors this child does not own otherwise.
            unsafe {
                libc::close(channel.as_raw_fd());
                libc::close(reaper.as_fd().as_raw_fd());
            }
            let code = server(conn, [stdin, stdout, stderr], filter);
            std::process::exit(code)
        }
        Ok(ForkResult::Parent { .. }) | Err(_) => true,
    }
}

/// One step, in a child of the helper (in the cgroups): its standard
/// descriptors made the client's, the request read, the sandbox joined, the
/// step forked and supervised.
fn server(conn: OwnedFd, stdio: [OwnedFd; 3], filter: &seccompiler::BpfProgram) -> i32 {
    let _ = SigSet::empty().thread_set_mask();
    if helper::die_with_parent().is_err() {
        return 1;
    }
    for (fd, target) in stdio.iter().zip(0..) {
        // SAFETY: dup2(2) on owned descriptors onto the standard ones.
        if unsafe { libc::dup2(fd.as_raw_fd(), target) } < 0 {
            return 1;
        }
    }
    drop(stdio);
    // Nothing else of the helper's reaches the step.
    let keep = conn.as_raw_fd() as u32;
    // SAFETY: close_range(2) takes no pointers; only `conn` stays above 2.
    unsafe {
        if keep > 3 {
            libc::close_range(3, keep - 1, 0);
        }
        libc::close_range(keep + 1, u32::MAX, 0);
    }
    let mut conn = std::fs::File::from(conn);
    let status = match start(&mut conn, filter) {
        Ok(step) => supervise(&mut conn, step),
        Err(e) => {
            eprintln!("recipes: {e}");
            (0, 125)
        }
    };
    let mut out = status.0.to_le_bytes().to_vec();
    out.extend(status.1.to_le_bytes());
    let _ = conn.write_all(&out);
    0
}

fn read_request(conn: &mut std::fs::File) -> Result<Request, HelperError> {
    let mut len = [0u8; 4];
    conn.read_exact(&mut len).map_err(HelperError::Io)?;
    let len = u32::from_le_bytes(len);
    if len > MAX_REQUEST {
        return Err(HelperError::Spawner(format!("a request of {len} bytes")));
    }
    let mut body = vec![0u8; len as usize];
    conn.read_exact(&mut body).map_err(HelperError::Io)?;
    serde_json::from_slice(&body).map_err(|e| HelperError::Spawner(e.to_string()))
}

/// Joins the sandbox and forks the step; its pid (this process's view).
fn start(conn: &mut std::fs::File, filter: &seccompiler::BpfProgram) -> Result<Pid, HelperError> {
    let request = read_request(conn)?;
    // The helper's mount namespace keeps the host's proc out of the way.
    let proc = std::path::Path::new(super::ops::HIDDEN).join("proc");
    helper::join(&proc, request.pid, request.start, request.net_host)?;
    let cstring = |b: &Vec<u8>| CString::new(b.clone()).map_err(HelperError::Nul);
    let args: Vec<CString> = request.argv.iter().map(cstring).collect::<Result<_, _>>()?;
    if args.is_empty() {
        return Err(HelperError::Spawner("no program to run".into()));
    }
    let step = helper::Step {
        cwd: &request.cwd,
        chroot: request.chroot.as_deref(),
        allow_setuid: request.allow_setuid,
    };
    // SAFETY: single-threaded, as the helper it was forked from.
    match unsafe { fork() }.map_err(|e| HelperError::Call {
        call: "fork",
        errno: e,
    })? {
        ForkResult::Child => {
            let placed =
                nix::unistd::setsid().and_then(|_| nix::sys::prctl::set_pdeathsig(Signal::SIGKILL));
            let err = match placed {
                Ok(()) => {
                    set_env(&request.env);
                    helper::run_in_sandbox(&step, &args, filter)
                }
                Err(e) => format!("setsid: {e}"),
            };
            eprintln!("recipes: {err}");
            std::process::exit(127);
        }
        ForkResult::Parent { child } => Ok(child),
    }
}

/// The client's environment, for the step (a fresh child, single-threaded).
fn set_env(env: &[(Vec<u8>, Vec<u8>)]) {
    use std::os::unix::ffi::OsStrExt;
    let keys: Vec<_> = std::env::vars_os().map(|(k, _)| k).collect();
    for key in keys {
        std::env::remove_var(key);
    }
    for (key, value) in env {
        let key = std::ffi::OsStr::from_bytes(key);
        let valid = !key.is_empty() && !key.as_bytes().contains(&b'=');
        if valid && !key.as_bytes().contains(&0) && !value.contains(&0) {
            std::env::set_var(key, std::ffi::OsStr::from_bytes(value));
        }
    }
}

/// Waits for the step, forwarding the client's signals to its group; kills
/// the group if the client goes away, and what the step left in it once it
/// ended. The step's status, as the wire says it.
fn supervise(conn: &mut std::fs::File, step: Pid) -> (i32, i32) {
    let Ok(pidfd) = helper::pidfd_of(step) else {
        return wait_status(step);
    };
    let mut open = true;
    loop {
        let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        if open {
            fds.push(PollFd::new(conn.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return wait_status(step),
        }
        let (ended, asked) = (ready(fds.first()), ready(fds.get(1)));
        drop(fds);
        if ended {
            // WNOWAIT: the leader stays a zombie, so its group id cannot
            // be reused before the group is killed.
            let _ = waitid(Id::Pid(step), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT);
            let _ = killpg(step, Signal::SIGKILL);
            return wait_status(step);
        }
        if asked {
            let mut word = [0u8; 4];
            match conn.read_exact(&mut word) {
                Ok(()) => {
                    if let Ok(sig) = Signal::try_from(i32::from_le_bytes(word)) {
                        if FORWARDED.contains(&sig) {
                            let _ = killpg(step, sig);
                        }
                    }
                }
                Err(_) => {
                    let _ = killpg(step, Signal::SIGKILL);
                    open = false;
                }
            }
        }
    }
}

/// Whether poll saw anything on `fd` (input, hang-up, error).
fn ready(fd: Option<&PollFd>) -> bool {
    fd.and_then(|f| f.revents()).is_some_and(|r| !r.is_empty())
}

fn wait_status(step: Pid) -> (i32, i32) {
    loop {
        match waitpid(step, None) {
            Ok(WaitStatus::Exited(_, code)) => return (0, code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return (1, sig as i32),
            Err(Errno::EINTR) | Ok(_) => continue,
            Err(_) => return (0, 1),
        }
    }
}

// ---------------------------------------------------------------- birth

/// `struct clone_args` of clone3(2), up to `cgroup` (its second version).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_PIDFD: u64 = 0x1000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// A helper process started by the runner: its pid, a pidfd, the write end
/// of its stdin and the read end of its stdout.
pub struct Launched {
    pub pid: Pid,
    pub pidfd: OwnedFd,
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
}

/// Starts `exe args` born in the cgroup v2 folder `dir` (clone3's
/// `CLONE_INTO_CGROUP`: no process moves into it), in a session of its own,
/// with piped stdin and stdout and `keep` inherited across exec. Fails
/// where the kernel has no such clone3 (before Linux 5.7).
pub fn launch_in(
    dir: &std::path::Path,
    exe: &std::path::Path,
    args: &[&str],
    keep: RawFd,
) -> std::io::Result<Launched> {
    use std::os::unix::ffi::OsStrExt;
    let invalid = |_| std::io::Error::from(std::io::ErrorKind::InvalidInput);
    let exe = CString::new(exe.as_os_str().as_bytes()).map_err(invalid)?;
    let args: Vec<CString> = std::iter::once(Ok(exe.clone()))
        .chain(args.iter().map(|a| CString::new(*a).map_err(invalid)))
        .collect::<Result<_, _>>()?;
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let cgroup = std::fs::File::open(dir)?;
    let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from);
    let ((in_r, in_w), (out_r, out_w), (err_r, err_w)) = (pipe()?, pipe()?, pipe()?);
    let mut pidfd: libc::c_int = -1;
    let mut clone_args = CloneArgs {
        flags: CLONE_PIDFD | CLONE_INTO_CGROUP,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: clone3(2) without CLONE_VM is a fork; the child below makes
    // only async-signal-safe system calls on memory prepared before it.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut clone_args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if pid == 0 {
        // SAFETY: as above; the child never returns.
        unsafe {
            born(
                [in_r.as_raw_fd(), out_w.as_raw_fd()],
                keep,
                err_w.as_raw_fd(),
                &exe,
                &argv,
            )
        }
    }
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    drop((in_r, out_w, err_w, cgroup));
    // SAFETY: the descriptor clone3 just gave us.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    let pid = Pid::from_raw(pid as i32);
    let mut errno = [0u8; 4];
    let mut err = std::fs::File::from(err_r);
    if err.read(&mut errno).unwrap_or(0) == 4 {
        let _ = waitpid(pid, None);
        return Err(std::io::Error::from_raw_os_error(i32::from_le_bytes(errno)));
    }
    Ok(Launched {
        pid,
        pidfd,
        stdin: in_w,
        stdout: out_r,
    })
}

/// The child of [`launch_in`]: what `std::process::Command` does before
/// exec (signal mask and SIGPIPE reset, stdio), then a session of its own
/// and `keep` kept; any failure goes to `err` as an errno.
///
/// # Safety
/// Only in the child of a fork of a possibly multi-threaded process.
unsafe fn born(
    [stdin, stdout]: [RawFd; 2],
    keep: RawFd,
    err: RawFd,
    exe: &CString,
    argv: &[*const libc::c_char],
) -> ! {
    let mut set: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut set);
    libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    let ok = libc::dup2(stdin, 0) >= 0
        && libc::dup2(stdout, 1) >= 0
        && libc::setsid() >= 0
        && libc::fcntl(keep, libc::F_SETFD, 0) >= 0;
    if ok {
        extern "C" {
            static environ: *const *const libc::c_char;
        }
        libc::execve(exe.as_ptr(), argv.as_ptr(), environ);
    }
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    libc::write(err, errno.to_le_bytes().as_ptr().cast(), 4);
    libc::_exit(127)
}
