//! The two hidden subcommands that run in a freshly exec'd, single-threaded
//! process: `__sandbox` (unshares the namespaces and becomes, through a
//! fork, PID 1 of the sandbox, holding it until its control pipe closes)
//! and `__enter` (joins a running sandbox's namespaces and runs a step).

use std::ffi::{CString, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::signal::{signal, SigHandler, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{chdir, chroot, execvp, fork, getppid, ForkResult};

use super::linux::{apply_all, Linux};
use super::plan::{plan, SandboxSpec};

/// Capabilities no step needs and that reach past the sandbox (kernel
/// modules, the clock, the kernel log, raw I/O): dropped from the bounding
/// set of every step.
const DROPPED_CAPS: &[i32] = &[
    16, // CAP_SYS_MODULE
    17, // CAP_SYS_RAWIO
    25, // CAP_SYS_TIME
    30, // CAP_AUDIT_CONTROL
    32, // CAP_MAC_OVERRIDE
    33, // CAP_MAC_ADMIN
    34, // CAP_SYSLOG
    35, // CAP_WAKE_ALARM
];

/// One line to the runner; a runner that stopped listening is not an error
/// worth a panic.
fn say(line: &str) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

fn die_with_parent() -> nix::Result<()> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
}

/// `recipes __sandbox --spec JSON`. Prints `pid N` (PID 1's pid on the
/// host), then `ready` or `error: ...`; exits when its stdin closes.
pub fn sandbox_main(spec: &str) -> i32 {
    let spec: SandboxSpec = match serde_json::from_str(spec) {
        Ok(spec) => spec,
        Err(e) => {
            say(&format!("error: invalid sandbox spec: {e}"));
            return 2;
        }
    };
    if let Err(message) = outer(&spec) {
        say(&format!("error: {message}"));
        return 1;
    }
    unreachable!("outer() exits")
}

fn outer(spec: &SandboxSpec) -> Result<(), String> {
    die_with_parent().map_err(|e| format!("prctl: {e}"))?;
    if getppid().as_raw() != spec.parent {
        return Err("the runner is gone".into());
    }
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWPID;
    if let Some(cgroup) = &spec.cgroup {
        std::fs::write(cgroup.join("cgroup.procs"), "0")
            .map_err(|e| format!("cannot join the cgroup {}: {e}", cgroup.display()))?;
        flags |= CloneFlags::CLONE_NEWCGROUP;
    }
    if !spec.net_host {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    unshare(flags).map_err(|e| format!("unshare: {e} (running recipes needs root)"))?;
    let _ = std::io::stdout().flush();
    // SAFETY: this process is single-threaded (freshly exec'd), so the
    // child may run arbitrary code after fork.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
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
            let code = match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, code)) => code,
                _ => 1,
            };
            std::process::exit(code);
        }
    }
}

/// PID 1 of the sandbox: build it, say so, then hold it until the runner
/// closes our stdin (or dies). Orphans re-parented here are reaped by the
/// kernel because SIGCHLD is ignored.
fn pid1(spec: &SandboxSpec) -> Result<(), String> {
    die_with_parent().map_err(|e| format!("prctl: {e}"))?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    apply_all(&mut Linux::default(), &plan(spec))?;
    say("ready");
    let null = std::fs::File::open("/dev/null").map_err(|e| e.to_string())?;
    nix::unistd::dup2_stdout(null.as_fd()).map_err(|e| e.to_string())?;
    // SAFETY: SIG_IGN for SIGCHLD has no handler code to run.
    unsafe { signal(Signal::SIGCHLD, SigHandler::SigIgn) }.map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    let mut stdin = std::io::stdin();
    while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
    Ok(())
}

/// `recipes __enter --pid P --cwd D [--chroot R] -- ARGV`: joins the
/// namespaces of the sandbox whose PID 1 is `P` and runs `ARGV` there.
pub fn enter_main(pid: i32, cwd: &Path, chroot_dir: Option<&Path>, argv: &[OsString]) -> i32 {
    match enter(pid, cwd, chroot_dir, argv) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("recipes: {message}");
            125
        }
    }
}

fn enter(
    pid: i32,
    cwd: &Path,
    chroot_dir: Option<&Path>,
    argv: &[OsString],
) -> Result<i32, String> {
    join_cgroup_of(pid);
    // Open every namespace first: once in the new mount namespace, the
    // host's /proc/P is out of sight.
    let mut namespaces: Vec<(OwnedFd, CloneFlags)> = Vec::new();
    for (name, flag) in [
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ] {
        let path = format!("/proc/{pid}/ns/{name}");
        let file = std::fs::File::open(&path)
            .map_err(|e| format!("cannot open {path}: {e} (is the sandbox gone?)"))?;
        namespaces.push((file.into(), flag));
    }
    for (fd, flag) in &namespaces {
        setns(fd, *flag).map_err(|e| format!("setns {flag:?}: {e}"))?;
    }
    drop(namespaces);
    let args: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_encoded_bytes()).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    // SAFETY: single-threaded process (freshly exec'd).
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            let err = run_in_sandbox(cwd, chroot_dir, &args);
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
                Ok(_) => continue,
                Err(e) => return Err(format!("waitpid: {e}")),
            }
        },
    }
}

/// Moves this process into the cgroup v2 folder of `pid` (the sandbox's),
/// so that the steps are killed with the sandbox's cgroup too. Best effort:
/// the PID namespace already takes them.
fn join_cgroup_of(pid: i32) {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return;
    };
    let Some(path) = text.lines().find_map(|l| l.strip_prefix("0::")) else {
        return;
    };
    if let Some(mount) = super::cgroup::cgroup2_mount() {
        let procs = mount
            .join(path.trim_start_matches('/'))
            .join("cgroup.procs");
        let _ = std::fs::write(procs, "0");
    }
}

/// In the forked child: place the process, drop capabilities, exec.
fn run_in_sandbox(cwd: &Path, chroot_dir: Option<&Path>, args: &[CString]) -> String {
    if let Some(root) = chroot_dir {
        if let Err(e) = enter_chroot(root) {
            return format!("cannot enter the chroot {}: {e}", root.display());
        }
    } else if let Err(e) = chdir(cwd) {
        return format!("cannot enter {}: {e}", cwd.display());
    }
    for cap in DROPPED_CAPS {
        // SAFETY: PR_CAPBSET_DROP takes an integer capability.
        unsafe { libc::prctl(libc::PR_CAPBSET_DROP, *cap as libc::c_ulong, 0, 0, 0) };
    }
    match execvp(&args[0], args) {
        Err(e) => format!("cannot run {:?}: {e}", args[0]),
        Ok(never) => match never {},
    }
}

/// A chroot step sees the fixture with proc, sys and dev mounted as a
/// container would have them, in a mount namespace of its own so that the
/// mounts vanish with the step.
fn enter_chroot(root: &Path) -> nix::Result<()> {
    let none: Option<&str> = None;
    unshare(CloneFlags::CLONE_NEWNS)?;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)?;
    let fs = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    for dir in ["proc", "sys", "dev"] {
        let _ = std::fs::create_dir_all(root.join(dir));
    }
    mount(Some("proc"), &root.join("proc"), Some("proc"), fs, none)?;
    mount(
        Some("sysfs"),
        &root.join("sys"),
        Some("sysfs"),
        fs | MsFlags::MS_RDONLY,
        none,
    )?;
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
    PathBuf::from(super::plan::SCRATCH)
}
