//! The sandbox: one per recipe run. Its root is root only inside: a user
//! namespace maps it to an unprivileged range of host ids (a slot of its
//! own), with private mount, PID, network, UTS, IPC and cgroup namespaces
//! held by a re-exec'd helper that is their PID 1. The mounts that hide the
//! host (read-only host, fresh `/tmp`, `/run`, `/dev`...) are made by the
//! host's root before the namespace exists, so they reach it locked. Steps
//! run under a seccomp filter, forked by the helper, which stays in the
//! sandbox's cgroups (no process moves into them per step); `__enter`, the
//! runner's child for each step, asks it and stands in for the step.
//! Each sandbox has a process and a memory limit. When the recipe ends, the
//! runner kills PID 1 (by pidfd) and the kernel takes every process, mount
//! and network device of the run with it; the cgroups go last. Linux code
//! lives here; this module never reads Markdown.

pub mod boot;
pub mod cgroup;
pub mod checkpoint;
pub mod helper;
pub mod linux;
pub mod network;
pub mod ops;
pub mod seccomp;
pub mod spawner;
pub mod userns;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::env::{EnvError, Environment, StepProgram};
use crate::fsutil::FsError;
use crate::model::Where;
use checkpoint::CheckpointError;
pub use ops::SandboxSpec;

/// Why a sandbox could not be made or closed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Slot(#[from] userns::SlotError),
    #[error(transparent)]
    Cgroup(#[from] cgroup::CgroupError),
    #[error("cannot hand {} to the sandbox: {source}", path.display())]
    Keep {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the sandbox helper {}: {source}", exe.display())]
    Spawn {
        exe: PathBuf,
        source: std::io::Error,
    },
    /// What the helper, or PID 1, said went wrong (a setup operation, with
    /// its system error).
    #[error("{0}")]
    Setup(String),
    /// PID 1, gone as soon as it was said.
    #[error(transparent)]
    Gone(#[from] helper::HelperError),
    #[error("the sandbox helper ended before the sandbox was ready")]
    Ended,
    #[error("cannot remove the sandbox's cgroups: {0}")]
    Cleanup(std::io::Error),
}

impl From<SandboxError> for EnvError {
    fn from(error: SandboxError) -> Self {
        EnvError::behind(error)
    }
}

/// What a command run inside the sandbox reads.
enum Input<'a> {
    Text(&'a str),
    File(std::fs::File),
}

/// How a checkpoint's archive of the files outside the fixture is written
/// and read (on stdin and stdout, from `/`): owners as numbers and every
/// extended attribute (file capabilities), the same both ways.
const TAR_FILES: [&str; 5] = [
    "--file=-",
    "--directory=/",
    "--numeric-owner",
    "--xattrs",
    "--xattrs-include=*",
];

/// How long closing a sandbox may wait for its helper once PID 1 is killed.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// A running sandbox.
pub struct Sandbox {
    /// The helper: its pid and a pidfd.
    helper: Option<(nix::unistd::Pid, OwnedFd)>,
    /// Its stdin: PID 1 ends when it closes.
    control: Option<OwnedFd>,
    /// The runner's end of the helper's socket pair, which each `__enter`
    /// inherits to ask the helper for its step.
    spawner: Option<OwnedFd>,
    pid1: i32,
    start: u64,
    pidfd: Option<OwnedFd>,
    exe: PathBuf,
    rootfs: String,
    keep: Option<PathBuf>,
    net_host: bool,
    cgroups: Option<cgroup::Cgroups>,
    shares: Vec<ops::Share>,
    /// The overlay's upper layer inside, if the fixture has one.
    upper: Option<PathBuf>,
    /// The ids of the mounts of PID 1's namespace once built: another set
    /// later means a step mounted or unmounted something.
    mounts: BTreeSet<u64>,
    /// The overlay's upper layer, opened before any step ran: a step cannot
    /// redirect the copy a checkpoint makes of it.
    upper_fd: Option<OwnedFd>,
    ids: ops::IdRange,
    /// What was made again from a checkpoint beyond its files.
    restored: Option<String>,
    /// The booted host the steps run in (`host=`): its container's name and
    /// how it came up.
    booted: Option<(String, String)>,
    /// Steps keep set-user-ID programs working (a booted host's).
    setuid: bool,
    _slot: userns::Slot,
}

impl Sandbox {
    /// Starts the helper and waits until the sandbox is built. `cache` holds
    /// the id slots' locks.
    pub fn start(
        mut spec: SandboxSpec,
        exe: PathBuf,
        cache: &Path,
    ) -> Result<Sandbox, SandboxError> {
        let slot = userns::Slot::acquire(&cache.join("slots"))?;
        spec.ids = slot.ids;
        spec.parent = std::process::id() as i32;
        spec.cgroups = Some(cgroup::create(spec.limits, spec.cpu_weight, spec.ids.base)?);
        if let Some(keep) = &spec.keep {
            // The sandbox's root writes the kept layers.
            std::os::unix::fs::chown(keep, Some(spec.ids.base), Some(spec.ids.base)).map_err(
                |source| SandboxError::Keep {
                    path: keep.clone(),
                    source,
                },
            )?;
        }
        let (ours, theirs) = spawner::pair(nix::sys::socket::SockType::SeqPacket)?;
        let launched = launch(&spec, &exe, theirs.as_raw_fd())?;
        drop(theirs);
        let mut sandbox = Sandbox {
            helper: Some((launched.pid, launched.pidfd)),
            control: Some(launched.stdin),
            spawner: Some(ours),
            pid1: 0,
            start: 0,
            pidfd: None,
            exe,
            rootfs: ops::rootfs_path(&spec),
            keep: spec.keep.clone(),
            net_host: spec.net_host,
            cgroups: spec.cgroups.clone(),
            shares: spec.shares.clone(),
            upper: ops::upper_path(&spec),
            mounts: BTreeSet::new(),
            upper_fd: None,
            ids: spec.ids,
            restored: None,
            booted: None,
            setuid: false,
            _slot: slot,
        };
        sandbox.await_ready(std::fs::File::from(launched.stdout))?;
        Ok(sandbox)
    }

    /// Reads the helper's lines until the sandbox is ready: `pid N` (from
    /// the helper's child) and `ready` (from PID 1) come in any order.
    fn await_ready(&mut self, stdout: std::fs::File) -> Result<(), SandboxError> {
        let mut ready = false;
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| SandboxError::Setup(format!("sandbox helper: {e}")))?;
            if let Some(pid) = line.strip_prefix("pid ") {
                self.pid1 = pid
                    .parse()
                    .map_err(|_| SandboxError::Setup(format!("sandbox helper said {line:?}")))?;
                self.start = helper::start_time(self.pid1).ok_or(SandboxError::Ended)?;
                self.pidfd = Some(helper::pidfd(self.pid1, self.start)?);
            } else if line == "ready" {
                ready = true;
            } else if let Some(message) = line.strip_prefix("error: ") {
                return Err(SandboxError::Setup(message.to_string()));
            }
            if ready && self.pid1 > 0 {
                self.mounts = self.mount_ids();
                self.upper_fd = match &self.upper {
                    Some(upper) => Some(self.open_upper(upper)?),
                    None => None,
                };
                return Ok(());
            }
        }
        Err(SandboxError::Ended)
    }

    /// The ids of the mounts in PID 1's namespace.
    fn mount_ids(&self) -> BTreeSet<u64> {
        self.read("mountinfo")
            .lines()
            .filter_map(|l| l.split(' ').next()?.parse().ok())
            .collect()
    }

    /// The mount points in PID 1's namespace, as the sandbox sees them.
    fn mount_points(&self) -> Vec<String> {
        self.read("mountinfo")
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(|p| p.replace("\\040", " "))
            .collect()
    }

    /// Opens the upper layer of a sandbox no step has run in yet.
    fn open_upper(&self, upper: &Path) -> Result<OwnedFd, SandboxError> {
        let path = PathBuf::from(format!("/proc/{}/root", self.pid1))
            .join(upper.strip_prefix("/").unwrap_or(upper));
        nix::fcntl::open(
            &path,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_NOFOLLOW,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| SandboxError::Setup(format!("cannot open {}: {e}", path.display())))
    }

    /// A file of PID 1's `/proc` entry, as the host sees it.
    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(format!("/proc/{}/{name}", self.pid1)).unwrap_or_default()
    }

    /// What neither a layer of files nor a network description can hold:
    /// processes left in the sandbox's PID namespace, mounts made by steps.
    fn live_state(&self) -> Option<CheckpointError> {
        let proc_ = PathBuf::from(format!("/proc/{}/root/proc", self.pid1));
        let mut running: Vec<String> = std::fs::read_dir(&proc_)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| *pid != 1)
            .filter_map(|pid| {
                let comm =
                    std::fs::read_to_string(proc_.join(pid.to_string()).join("comm")).ok()?;
                Some(comm.trim().to_string())
            })
            .collect();
        running.sort();
        running.dedup();
        if !running.is_empty() {
            return Some(CheckpointError::Processes(running));
        }
        if self.mount_ids() != self.mounts {
            return Some(CheckpointError::Mounts);
        }
        None
    }

    /// Runs `argv` inside the sandbox, as its root, with `input` on its
    /// standard input and its standard output into `output` (returned as
    /// text when `None`).
    fn run_inside(
        &self,
        argv: &[&str],
        input: Input,
        output: Option<std::fs::File>,
    ) -> Result<String, CheckpointError> {
        use std::io::Write;
        let mut command = self.enter(&StepProgram {
            program: argv[0].into(),
            args: argv[1..].iter().map(Into::into).collect(),
            where_: Where::Host,
        });
        let (stdin, text) = match input {
            Input::Text(text) => (Stdio::piped(), Some(text)),
            Input::File(file) => (Stdio::from(file), None),
        };
        let stdout = output.map_or_else(Stdio::piped, Stdio::from);
        // Commands from the system's folders only: the runner's PATH may
        // name folders (root's home) that steps can write.
        let mut child = command
            .env("PATH", crate::model::STEP_PATH)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .map_err(cannot_run(argv[0]))?;
        let written = match (child.stdin.take(), text) {
            (Some(mut pipe), Some(text)) => pipe.write_all(text.as_bytes()).is_ok(),
            _ => true,
        };
        let out = child.wait_with_output().map_err(cannot_run(argv[0]))?;
        if !out.status.success() || !written {
            return Err(CheckpointError::Failed {
                command: argv.join(" "),
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The sandbox's network, as a checkpoint can make it again (nothing
    /// when the sandbox shares the host's).
    fn inspect_network(&self) -> Result<Option<network::Network>, CheckpointError> {
        if self.net_host {
            return Ok(None);
        }
        let report = self.run_inside(&["sh", "-c", network::INSPECT], Input::Text(""), None)?;
        let net = network::read(&report)?;
        Ok((!net.is_empty()).then_some(net))
    }

    /// Archives the files of [`ops::KEPT`] into `archive`: `tar` runs
    /// inside the sandbox, as its root, so paths resolve in the sandbox's
    /// view alone and owners, modes and capabilities are its own. Mount
    /// points (the fixture at `at=`) are left out.
    fn archive_kept(&self, archive: &Path) -> Result<(), CheckpointError> {
        let file = std::fs::File::create(archive).map_err(FsError::at("create", archive))?;
        let mut argv: Vec<String> = ["tar", "--create", "--one-file-system"]
            .iter()
            .chain(&TAR_FILES)
            .map(|a| a.to_string())
            .collect();
        for point in self.mount_points() {
            if ops::KEPT
                .iter()
                .any(|k| point.starts_with(&format!("{k}/")))
            {
                argv.push(format!("--exclude=.{point}"));
                argv.push(format!("--exclude={}", point.trim_start_matches('/')));
            }
        }
        argv.extend(
            ops::KEPT
                .iter()
                .map(|k| k.trim_start_matches('/').to_string()),
        );
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        self.run_inside(&argv, Input::Text(""), Some(file))
            .map(drop)
            .map_err(|e| CheckpointError::Files(Box::new(e)))
    }

    /// Brings back what a checkpoint kept in `dir` beside its layer: the
    /// files written outside the fixture (unpacked by `tar` inside the
    /// sandbox, as its root), then the network.
    pub fn restore(&mut self, dir: &Path) -> Result<(), CheckpointError> {
        if let Some(archive) = checkpoint::files(dir) {
            let file = std::fs::File::open(&archive).map_err(FsError::at("read", &archive))?;
            let argv: Vec<&str> = ["tar", "--extract", "--same-owner", "--same-permissions"]
                .iter()
                .chain(&TAR_FILES)
                .copied()
                .collect();
            self.run_inside(&argv, Input::File(file), None)?;
        }
        let Some(net) = checkpoint::network(dir)? else {
            return Ok(());
        };
        if !net.ip.is_empty() {
            let batch = net.ip.join("\n") + "\n";
            self.run_inside(&["ip", "-batch", "-"], Input::Text(&batch), None)?;
        }
        if let Some(rules) = &net.nft {
            self.run_inside(&["nft", "-f", "-"], Input::Text(rules), None)?;
        }
        if let Some(script) = net.sysctl_script() {
            self.run_inside(&["sh", "-c", &script], Input::Text(""), None)?;
        }
        self.restored = Some(format!("its network made again: {}", net.summary()));
        Ok(())
    }

    /// A command that runs `step` in the sandbox (in its booted host, if
    /// there is one) through `__enter`.
    pub fn enter(&self, step: &StepProgram) -> Command {
        let mut command = Command::new(&self.exe);
        command
            .arg("__enter")
            .arg("--pid")
            .arg(self.pid1.to_string())
            .arg("--start")
            .arg(self.start.to_string())
            .arg("--cwd")
            .arg(ops::SCRATCH);
        for dir in self.cgroups.iter().flat_map(|c| &c.join) {
            command.arg("--cgroup").arg(dir);
        }
        if let Some(fd) = &self.spawner {
            let fd = fd.as_raw_fd();
            command.arg("--spawner").arg(fd.to_string());
            // SAFETY: fcntl(2) is async-signal-safe. This child alone gets
            // the descriptor across exec.
            unsafe {
                command.pre_exec(move || spawner::inherit(fd));
            }
        }
        if self.net_host {
            command.arg("--net-host");
        }
        if self.setuid {
            command.arg("--allow-setuid");
        }
        if let Some((name, _)) = &self.booted {
            command.arg("--").args(self.attach_args(name, step));
            return command;
        }
        if step.where_ == Where::Chroot {
            command.arg("--chroot").arg(&self.rootfs);
        }
        command.arg("--").arg(&step.program).args(&step.args);
        command
    }

    /// Keeps the state of the fixture as a checkpoint layer at `dir`; the
    /// note says what it keeps beyond files (its network).
    fn keep_checkpoint(&self, dir: &Path) -> Result<Option<String>, CheckpointError> {
        let upper = self.upper_fd.as_ref().ok_or(CheckpointError::NoOverlay)?;
        if let Some(why) = self.live_state() {
            return Err(why);
        }
        let net = self.inspect_network()?;
        // The layer opened before the first step, through this process's
        // descriptor: nothing a step did to the sandbox's paths redirects it.
        let upper = PathBuf::from(format!(
            "/proc/{}/fd/{}/.",
            std::process::id(),
            upper.as_raw_fd()
        ));
        let capture = checkpoint::Capture {
            upper: &upper,
            files: &|archive: &Path| self.archive_kept(archive),
            ids: self.ids,
            network: net.as_ref(),
        };
        checkpoint::keep(&capture, dir)?;
        Ok(net.map(|n| format!("with its network: {}", n.summary())))
    }

    /// Kills PID 1 (and with it the whole sandbox), waits a bounded time
    /// for the helper, then removes the cgroups, killing what is left.
    pub fn stop(&mut self) -> Result<(), SandboxError> {
        drop(self.spawner.take());
        drop(self.control.take());
        if let Some(fd) = self.pidfd.take() {
            helper::kill(&fd);
        }
        if let Some((pid, pidfd)) = self.helper.take() {
            use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
            let deadline = Instant::now() + CLOSE_WAIT;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
                let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, timeout) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    Ok(0) | Err(_) => helper::kill(&pidfd),
                    Ok(_) => {}
                }
                break;
            }
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        if let Some(cgroups) = self.cgroups.take() {
            cgroups.remove().map_err(SandboxError::Cleanup)?;
        }
        Ok(())
    }
}

impl Environment for Sandbox {
    fn rootfs(&self) -> String {
        self.rootfs.clone()
    }

    fn inside(&self, host: &Path) -> PathBuf {
        for share in &self.shares {
            if let Ok(rest) = host.strip_prefix(&share.host) {
                return share.inside.join(rest);
            }
        }
        host.to_path_buf()
    }

    fn home(&self) -> Option<PathBuf> {
        Some(PathBuf::from("/root"))
    }

    /// `container=lxc`, as LXC sets it in its containers: tools that make
    /// device nodes (debootstrap) bind them instead, since mknod of a device
    /// needs the host's root.
    fn vars(&self) -> Vec<(&'static str, &'static str)> {
        vec![("container", "lxc")]
    }

    fn command(&self, step: &StepProgram) -> Result<Command, EnvError> {
        Ok(self.enter(step))
    }

    fn diagnose(&self) -> Vec<String> {
        self.cgroups
            .iter()
            .flat_map(|c| c.hits())
            .map(|hit| hit.to_string())
            .collect()
    }

    fn capture(&self, dir: &Path) -> Result<Option<String>, EnvError> {
        Ok(self.keep_checkpoint(dir)?)
    }

    fn booted(&self) -> Option<String> {
        self.booted.as_ref().map(|(_, note)| note.clone())
    }

    fn restored(&self) -> Option<String> {
        self.restored.clone()
    }

    fn close(mut self: Box<Self>) -> Result<Option<PathBuf>, EnvError> {
        self.stop()?;
        Ok(self.keep.take())
    }
}

/// Starts the helper, `__sandbox` with the spec and `spawner` (its end of
/// the socket pair), in a session of its own. Where the kernel can, it is
/// born in the sandbox's cgroup v2 folder, which it then does not join;
/// otherwise it joins every folder itself.
fn launch(spec: &SandboxSpec, exe: &Path, spawner: i32) -> Result<spawner::Launched, SandboxError> {
    let json = |spec: &SandboxSpec| {
        serde_json::to_string(spec).map_err(|e| SandboxError::Setup(e.to_string()))
    };
    let fd = spawner.to_string();
    if let Some(cgroups) = &spec.cgroups {
        let mut born = spec.clone();
        if let Some(c) = born.cgroups.as_mut() {
            c.join.retain(|dir| dir != &cgroups.delegated);
        }
        let args = ["__sandbox", "--spec", &json(&born)?, "--spawner", &fd];
        if let Ok(launched) = spawner::launch_in(&cgroups.delegated, exe, &args, spawner) {
            return Ok(launched);
        }
    }
    let mut command = Command::new(exe);
    command
        .args(["__sandbox", "--spec", &json(spec)?, "--spawner", &fd])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // SAFETY: setsid(2) and fcntl(2) are async-signal-safe. A session of
    // its own: no controlling terminal reaches the sandbox, and the
    // terminal's Ctrl-C goes to the runner, which stops the sandbox itself.
    unsafe {
        command.pre_exec(move || {
            nix::unistd::setsid()?;
            spawner::inherit(spawner)
        });
    }
    let mut child = command.spawn().map_err(|source| SandboxError::Spawn {
        exe: exe.to_path_buf(),
        source,
    })?;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let pidfd = helper::pidfd_of(pid).map_err(|source| SandboxError::Spawn {
        exe: exe.to_path_buf(),
        source,
    })?;
    Ok(spawner::Launched {
        pid,
        pidfd,
        stdin: child.stdin.take().expect("piped").into(),
        stdout: child.stdout.take().expect("piped").into(),
    })
}

/// A `map_err` adapter for a command run inside that could not start.
fn cannot_run(program: &str) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Run {
        program: program.to_string(),
        source,
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
