//! Process supervision: each step runs in its own process group with stdout
//! and stderr merged into one pipe drained on a thread; a deadline or an
//! interruption stops the whole group (SIGTERM, a grace period, SIGKILL), and
//! whatever the step left in its group is killed when it ends.

use std::collections::BTreeSet;
use std::io::{PipeReader, PipeWriter, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag};
use nix::unistd::Pid;

use crate::model::STEP_PATH;

/// How long a stopped group gets between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(1);
/// Output kept per step; the rest is drained and dropped.
const OUTPUT_CAP: usize = 16 << 20;

/// How a supervised process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    TimedOut,
    Interrupted,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => match Signal::try_from(*s) {
                Ok(sig) => write!(f, "signal {}", sig.as_str()),
                Err(_) => write!(f, "signal {s}"),
            },
            Exit::TimedOut => write!(f, "timed out"),
            Exit::Interrupted => write!(f, "interrupted"),
        }
    }
}

/// The end of a supervised process and everything it printed.
#[derive(Debug, Clone)]
pub struct Finished {
    pub exit: Exit,
    pub output: Vec<u8>,
}

/// Knows every running process group, so that Ctrl-C can stop them all.
#[derive(Debug, Default)]
pub struct Supervisor {
    groups: Mutex<BTreeSet<i32>>,
    interrupted: AtomicBool,
}

impl Supervisor {
    pub fn new() -> Arc<Self> {
        Arc::new(Supervisor::default())
    }

    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// Stops every running group: SIGTERM now, SIGKILL after the grace
    /// period for those still registered. New steps will not start.
    pub fn interrupt(self: &Arc<Self>) {
        self.interrupted.store(true, Ordering::SeqCst);
        self.signal_all(Signal::SIGTERM);
        let this = Arc::clone(self);
        std::thread::spawn(move || {
            std::thread::sleep(GRACE);
            this.signal_all(Signal::SIGKILL);
        });
    }

    fn signal_all(&self, signal: Signal) {
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        for &pgid in groups.iter() {
            let _ = killpg(Pid::from_raw(pgid), signal);
        }
    }

    /// Runs `command` to its end under supervision.
    pub fn run(
        &self,
        command: Command,
        stdin: Option<Vec<u8>>,
        timeout: Duration,
    ) -> std::io::Result<Finished> {
        self.run_observed(command, stdin, timeout, None)
    }

    /// Like [`Supervisor::run`], and every chunk of output is also sent to
    /// `observer` as it comes (a progress display).
    pub fn run_observed(
        &self,
        mut command: Command,
        stdin: Option<Vec<u8>>,
        timeout: Duration,
        observer: Option<mpsc::Sender<Vec<u8>>>,
    ) -> std::io::Result<Finished> {
        let (reader, writer) = std::io::pipe()?;
        prepare(&mut command, writer, stdin.is_some())?;
        let Some(mut child) = self.spawn_registered(&mut command)? else {
            return Ok(Finished {
                exit: Exit::Interrupted,
                output: Vec::new(),
            });
        };
        // The pipe's write ends live in `command`; drop them so EOF can come.
        drop(command);
        let pgid = child.id() as i32;
        let drain = Drain::start(reader, observer);
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            std::thread::spawn(move || {
                let _ = pipe.write_all(&data);
            });
        }
        let timed_out = !wait_for_leader(pgid, timeout);
        let status = self.stop_group(pgid, &mut child)?;
        // A process that left the group may still hold the pipe: do not
        // wait for it for long.
        let output = drain.finish(Duration::from_millis(200));
        Ok(Finished {
            exit: self.exit_of(status, timed_out),
            output,
        })
    }

    /// Starts `command` and registers its process group, under the lock so
    /// that an interruption cannot miss the group; `None` once interrupted.
    fn spawn_registered(&self, command: &mut Command) -> std::io::Result<Option<Child>> {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        if self.interrupted() {
            return Ok(None);
        }
        let child = command.spawn()?;
        groups.insert(child.id() as i32);
        Ok(Some(child))
    }

    /// Kills whatever is left in the group `pgid`, unregisters it, and reaps
    /// its leader.
    fn stop_group(&self, pgid: i32, child: &mut Child) -> std::io::Result<ExitStatus> {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        // Nothing a step started in its group outlives it.
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        groups.remove(&pgid);
        child.wait()
    }

    /// How the step ended: an interruption wins over a timeout, which wins
    /// over the leader's own status.
    fn exit_of(&self, status: ExitStatus, timed_out: bool) -> Exit {
        if self.interrupted() && !status.success() {
            Exit::Interrupted
        } else if timed_out {
            Exit::TimedOut
        } else if let Some(code) = status.code() {
            Exit::Code(code)
        } else {
            Exit::Signal(status.signal().unwrap_or(0))
        }
    }
}

/// Sends the step's stdout and stderr to `output`, gives it a stdin pipe
/// only when there is something to feed it, and has it start a session of
/// its own.
fn prepare(command: &mut Command, output: PipeWriter, with_stdin: bool) -> std::io::Result<()> {
    command
        .stdout(output.try_clone()?)
        .stderr(output)
        .stdin(if with_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    // SAFETY: setsid(2) and prctl(2) are async-signal-safe. A session of
    // its own: the step leads its process group (what timeouts signal)
    // and has no controlling terminal, so it can neither read the user's
    // terminal nor be reached by the terminal's Ctrl-C (the runner stops
    // it); and it dies if the runner is killed.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid()?;
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            Ok(())
        });
    }
    Ok(())
}

/// Waits for the leader of the group `pgid` to exit; past `timeout` stops
/// the group (SIGTERM, the grace period, SIGKILL). Whether the leader
/// exited in time.
fn wait_for_leader(pgid: i32, timeout: Duration) -> bool {
    let (exited_tx, exited_rx) = mpsc::channel();
    std::thread::spawn(move || {
        // WNOWAIT: the leader stays a zombie, so its process group id
        // cannot be reused before we kill what is left in the group.
        let _ = waitid(
            Id::Pid(Pid::from_raw(pgid)),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT,
        );
        let _ = exited_tx.send(());
    });
    if exited_rx.recv_timeout(timeout).is_ok() {
        return true;
    }
    let _ = killpg(Pid::from_raw(pgid), Signal::SIGTERM);
    if exited_rx.recv_timeout(GRACE).is_err() {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        let _ = exited_rx.recv();
    }
    false
}

/// A step's output, read from its pipe on a thread of its own.
struct Drain {
    output: Arc<Mutex<Vec<u8>>>,
    drained: mpsc::Receiver<()>,
    /// Set once the step ended and the pipe did not close: the thread takes
    /// what the pipe already holds, then stops.
    stop: Arc<AtomicBool>,
}

/// How long the drain thread waits for data before looking at `stop`.
const DRAIN_TICK: Duration = Duration::from_millis(50);

/// How long, once told to stop, the drain thread goes on reading a pipe
/// that someone (a daemon the step left) keeps writing.
const DRAIN_LAST: Duration = Duration::from_secs(1);

impl Drain {
    /// Reads `reader` to its end, keeping the first [`OUTPUT_CAP`] bytes
    /// and sending every chunk to `observer`.
    fn start(mut reader: PipeReader, observer: Option<mpsc::Sender<Vec<u8>>>) -> Drain {
        let output = Arc::new(Mutex::new(Vec::new()));
        let (drained_tx, drained) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let kept = Arc::clone(&output);
        let stopping = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            let mut stopped_at = None;
            loop {
                let stopped = stopping.load(Ordering::SeqCst);
                if stopped && stopped_at.is_none() {
                    stopped_at = Some(std::time::Instant::now());
                }
                if stopped_at.is_some_and(|t| t.elapsed() > DRAIN_LAST) {
                    break;
                }
                // Told to stop, only what the pipe already holds.
                let tick = if stopped { Duration::ZERO } else { DRAIN_TICK };
                if !readable(&reader, tick) {
                    if stopped {
                        break;
                    }
                    continue;
                }
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                if let Some(observer) = &observer {
                    let _ = observer.send(buf[..n].to_vec());
                }
                let mut out = kept.lock().unwrap_or_else(|e| e.into_inner());
                let room = OUTPUT_CAP.saturating_sub(out.len());
                out.extend_from_slice(&buf[..n.min(room)]);
            }
            let _ = drained_tx.send(());
        });
        Drain {
            output,
            drained,
            stop,
        }
    }

    /// The output, once the pipe is closed or, past `patience` (a process
    /// that left the step's group may hold it open), once what the pipe
    /// already holds is read: the last words of a step are never lost to a
    /// drain thread the scheduler had not run yet.
    fn finish(self, patience: Duration) -> Vec<u8> {
        if self.drained.recv_timeout(patience).is_err() {
            self.stop.store(true, Ordering::SeqCst);
            let _ = self.drained.recv();
        }
        std::mem::take(&mut *self.output.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Whether `reader` has data (or its end) within `tick`.
fn readable(reader: &PipeReader, tick: Duration) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(tick).unwrap_or(PollTimeout::MAX);
    match poll(&mut fds, timeout) {
        Ok(0) => false,
        Ok(_) => true,
        // Look again (with a zero tick, EINTR comes only when nothing is
        // ready).
        Err(nix::errno::Errno::EINTR) => false,
        // Let the read say what is wrong, and end the loop.
        Err(_) => true,
    }
}

/// Makes this process the reaper of its descendants' orphans
/// (`PR_SET_CHILD_SUBREAPER`), for runs without a sandbox.
pub fn adopt_orphans() {
    let _ = nix::sys::prctl::set_child_subreaper(true);
}

/// Kills and reaps every child still running once no step runs: the
/// orphans [`adopt_orphans`] brought back.
pub fn stop_orphans() {
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the command name: state, ppid, ...
        let ppid = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split(' ').nth(1));
        if ppid == Some(me.as_str()) {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    while let Ok(status) = nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG))
    {
        if status == nix::sys::wait::WaitStatus::StillAlive {
            break;
        }
    }
}

/// Where a host command is, looked up in [`STEP_PATH`].
pub fn which(name: &str) -> Option<PathBuf> {
    STEP_PATH
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
}

/// Whether a process `pid` exists on the host.
pub fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The entries of `dir` left by runs that are gone: those whose name
/// carries (as `pid_of` reads it) the pid of a process that no longer
/// exists. Temporary folders and cgroups carry their run's pid for this.
pub fn left_by_dead_runs(dir: &Path, pid_of: impl Fn(&str) -> Option<u32>) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| {
            pid_of(&entry.file_name().to_string_lossy()).is_some_and(|pid| !process_exists(pid))
        })
        .map(|entry| entry.path())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    /// What a step wrote before it ended is kept even when the pipe stays
    /// open (a daemon it left holds it) and the drain thread has not run
    /// yet: no patience at all, and every byte is there.
    #[test]
    fn the_last_words_in_a_pipe_held_open_are_kept() {
        for _ in 0..50 {
            let (reader, mut writer) = std::io::pipe().unwrap();
            let words = b"mount: /sys/fs/pstore: permission denied.\n".repeat(100);
            writer.write_all(&words).unwrap();
            let drain = Drain::start(reader, None);
            assert_eq!(drain.finish(Duration::ZERO), words);
            drop(writer);
        }
    }

    /// A pipe that someone keeps writing does not hold the step forever:
    /// `finish` returns (a hang fails after a generous bound instead of
    /// stalling the test run), and the writer then meets a closed pipe.
    #[test]
    fn a_pipe_written_forever_is_left() {
        let (reader, writer) = std::io::pipe().unwrap();
        let (written_tx, written) = mpsc::channel();
        std::thread::spawn(move || {
            let mut writer = writer;
            while writer.write_all(&[b'y'; 4096]).is_ok() {}
            let _ = written_tx.send(());
        });
        let (finished_tx, finished) = mpsc::channel();
        std::thread::spawn(move || {
            let drain = Drain::start(reader, None);
            let _ = finished_tx.send(drain.finish(Duration::from_millis(10)));
        });
        let output = finished
            .recv_timeout(Duration::from_secs(60))
            .expect("finish returned");
        assert!(!output.is_empty());
        written
            .recv_timeout(Duration::from_secs(60))
            .expect("the writer met a closed pipe");
    }

    /// Running (a zombie waiting for its reaper does not count).
    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| {
                let state = stat.rsplit_once(") ").map(|(_, rest)| rest.as_bytes()[0]);
                state != Some(b'Z')
            })
            .unwrap_or(false)
    }

    #[test]
    fn merges_output_and_reports_code() {
        let s = Supervisor::new();
        let f = s
            .run(
                sh("echo out; echo err >&2; exit 3"),
                None,
                Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!(f.exit, Exit::Code(3));
        assert_eq!(String::from_utf8_lossy(&f.output), "out\nerr\n");
    }

    #[test]
    fn feeds_stdin() {
        let s = Supervisor::new();
        let f = s
            .run(sh("cat"), Some(b"hello".to_vec()), Duration::from_secs(10))
            .unwrap();
        assert_eq!(f.output, b"hello");
    }

    #[test]
    fn timeout_kills_the_group() {
        let s = Supervisor::new();
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 100 & echo $! > {}; sleep 100", pidfile.display());
        let f = s
            .run(sh(&script), None, Duration::from_millis(300))
            .unwrap();
        assert_eq!(f.exit, Exit::TimedOut);
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(!alive(pid), "background grandchild still running");
    }

    #[test]
    fn background_children_do_not_hold_the_step() {
        let s = Supervisor::new();
        let f = s
            .run(sh("sleep 100 & echo done"), None, Duration::from_secs(10))
            .unwrap();
        // Waiting for `sleep 100` would have timed out.
        assert_eq!(f.exit, Exit::Code(0));
    }
    #[test]
    fn only_entries_of_runs_that_are_gone_are_left_over() {
        let dir = tempfile::tempdir().unwrap();
        // pid 1 always exists; pids never go this high (pid_max <= 2^22).
        for name in ["1-alive", "999999999-gone", "no-pid"] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        let pid_of = |name: &str| name.split('-').next()?.parse().ok();
        let left = left_by_dead_runs(dir.path(), pid_of);
        assert_eq!(left, [dir.path().join("999999999-gone")]);
    }
}
