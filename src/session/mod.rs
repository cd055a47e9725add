//! Terminal sessions (DESIGN §8): the hidden `recipes __session`, which
//! runs where the step runs (inside the sandbox, through `__enter`, like any
//! step program). It reads a [`Request`] on stdin, opens a pseudo-terminal
//! there (the sandbox's own devpts), starts the session's program on it as
//! the controlling terminal of a new session, and plays the script against
//! what the program shows ([`expect`]), each wait bounded by the step's
//! timeout, with no fixed sleeps. It ends by printing a [`Report`] after
//! [`REPORT_MARK`] on stdout, which the runner reads.

pub mod expect;
pub mod screen;

use std::ffi::{CString, NulError};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::{openpty, Winsize};
use nix::sys::signal::{kill, signal, SigHandler, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{execvp, fork, setsid, ForkResult, Pid};
use serde::{Deserialize, Serialize};

use crate::model::Session;
use expect::{Expecter, Next};
use screen::Screen;

/// Printed before the report, so that the runner finds it in the output.
pub const REPORT_MARK: &str = "\u{1}recipes-session ";

/// What the runner asks of `__session`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub session: Session,
    /// The bound of each wait, in milliseconds.
    pub timeout_ms: u64,
}

/// How a session went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub passed: bool,
    /// The line of the page the failure is about.
    pub line: usize,
    pub message: String,
    /// A wait ran past the timeout.
    pub timed_out: bool,
    /// What the terminal showed, to the end.
    pub screen: String,
}

/// The terminal's size: wide, so that programs do not wrap lines.
const SIZE: Winsize = Winsize {
    ws_row: 50,
    ws_col: 200,
    ws_xpixel: 0,
    ws_ypixel: 0,
};

/// `recipes __session`: runs the request read on stdin; prints the report.
pub fn session_main() -> i32 {
    let mut input = String::new();
    let report = match std::io::stdin().read_to_string(&mut input) {
        Err(e) => failed(0, format!("cannot read the session: {e}"), String::new()),
        Ok(_) => match serde_json::from_str::<Request>(&input) {
            Err(e) => failed(0, format!("malformed session request: {e}"), String::new()),
            Ok(request) => run(&request.session, Duration::from_millis(request.timeout_ms)),
        },
    };
    let json = serde_json::to_string(&report).unwrap_or_default();
    println!("{REPORT_MARK}{json}");
    i32::from(!report.passed)
}

fn failed(line: usize, message: String, screen: String) -> Report {
    Report {
        passed: false,
        line,
        message,
        timed_out: false,
        screen,
    }
}

/// Why the program could not be started on its terminal, or be waited
/// for, or typed to. The report says it, as text, to the runner.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("the command holds a NUL byte: {0}")]
    Nul(NulError),
    #[error("cannot open a pseudo-terminal: {0}")]
    Pty(Errno),
    #[error("fork: {0}")]
    Fork(Errno),
    #[error("pidfd_open: {0}")]
    Pidfd(std::io::Error),
    #[error("poll: {0}")]
    Poll(Errno),
    #[error("cannot type into the terminal: {0}")]
    Type(Errno),
}

/// The program started on the terminal.
struct Program {
    pid: Pid,
    pidfd: OwnedFd,
    master: OwnedFd,
    /// Its exit code (128 + signal when killed), once it has ended.
    status: Option<i32>,
    /// The terminal gave end of file (no process holds it any more).
    hung_up: bool,
}

impl Program {
    /// Starts `bash -c COMMAND` on a new terminal, as the leader of a new
    /// session whose controlling terminal it is.
    fn start(command: &str) -> Result<Program, SessionError> {
        let argv: Vec<CString> = ["bash", "--noprofile", "--norc", "-c", command]
            .iter()
            .map(|a| CString::new(*a).map_err(SessionError::Nul))
            .collect::<Result<_, _>>()?;
        let pty = openpty(&SIZE, None).map_err(SessionError::Pty)?;
        // SAFETY: this process is single-threaded (a freshly exec'd
        // `__session` that started no thread), and the child only makes
        // async-signal-safe calls before exec.
        match unsafe { fork() }.map_err(SessionError::Fork)? {
            ForkResult::Child => {
                // setsid, ioctl, prctl and dup2 (raw system calls, through
                // rustix) are async-signal-safe; nothing here allocates.
                let slave = &pty.slave;
                let ok = setsid().is_ok()
                    && rustix::process::ioctl_tiocsctty(slave).is_ok()
                    && rustix::process::set_parent_process_death_signal(Some(
                        rustix::process::Signal::KILL,
                    ))
                    .is_ok()
                    && rustix::stdio::dup2_stdin(slave).is_ok()
                    && rustix::stdio::dup2_stdout(slave).is_ok()
                    && rustix::stdio::dup2_stderr(slave).is_ok();
                if !ok {
                    // SAFETY: _exit is async-signal-safe.
                    unsafe { libc::_exit(126) }
                }
                // SAFETY: signal(2) is async-signal-safe. The runtime
                // ignores SIGPIPE; the program must not inherit that.
                unsafe {
                    let _ = signal(Signal::SIGPIPE, SigHandler::SigDfl);
                }
                drop(pty);
                let _ = execvp(&argv[0], &argv);
                // SAFETY: _exit is async-signal-safe.
                unsafe { libc::_exit(127) }
            }
            ForkResult::Parent { child } => {
                drop(pty.slave);
                let pidfd = rustix::process::Pid::from_raw(child.as_raw())
                    .ok_or(rustix::io::Errno::SRCH)
                    .and_then(|pid| {
                        rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
                    });
                let pidfd = match pidfd {
                    Ok(fd) => fd,
                    Err(e) => {
                        let _ = kill(child, Signal::SIGKILL);
                        let _ = waitpid(child, None);
                        return Err(SessionError::Pidfd(e.into()));
                    }
                };
                Ok(Program {
                    pid: child,
                    pidfd,
                    master: pty.master,
                    status: None,
                    hung_up: false,
                })
            }
        }
    }

    fn ended(&self) -> bool {
        self.status.is_some() || self.hung_up
    }

    /// Waits up to `timeout` for output or the program's end, feeding the
    /// screen. Returns false when the time is up with nothing new.
    fn wait(&mut self, screen: &mut Screen, timeout: Duration) -> Result<bool, SessionError> {
        let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
        let (readable, exited) = {
            let mut fds = vec![PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN)];
            if !self.hung_up {
                fds.push(PollFd::new(self.master.as_fd(), PollFlags::POLLIN));
            }
            let timeout = PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, timeout) {
                Ok(0) => return Ok(false),
                Ok(_) => {}
                Err(Errno::EINTR) => return Ok(true),
                Err(e) => return Err(SessionError::Poll(e)),
            }
            let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
            (fds.get(1).is_some_and(ready), ready(&fds[0]))
        };
        if readable {
            self.read(screen);
        }
        if exited && self.status.is_none() {
            self.status = Some(self.reap());
            // What it wrote before it ended is still in the terminal.
            while !self.hung_up && self.poll_master() {
                self.read(screen);
            }
        }
        Ok(true)
    }

    /// Whether the program has ended (reaped or not).
    fn has_ended(&self) -> bool {
        if self.status.is_some() {
            return true;
        }
        let mut fds = [PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN)];
        matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
    }

    fn poll_master(&self) -> bool {
        let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
        matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
    }

    fn read(&mut self, screen: &mut Screen) {
        let mut buf = [0u8; 8192];
        match nix::unistd::read(&self.master, &mut buf) {
            Ok(0) | Err(Errno::EIO) => self.hung_up = true,
            Ok(n) => screen.feed(&buf[..n]),
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(_) => self.hung_up = true,
        }
    }

    fn reap(&self) -> i32 {
        loop {
            match waitpid(self.pid, None) {
                Ok(WaitStatus::Exited(_, code)) => return code,
                Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
                Err(Errno::EINTR) | Ok(_) => continue,
                Err(_) => return -1,
            }
        }
    }

    /// Waits (up to [`SETTLE`]) until every process of the terminal's
    /// foreground group has been asleep for a few polls in a row: a person
    /// types when the program waits for them, not while it is still
    /// starting (a `Ctrl+c` that lands between a shell's fork and its
    /// child's exec is lost; a program that sets up its terminal may flush
    /// what was typed before). A program that never sleeps gets its input
    /// anyway.
    fn settle(&self) {
        let start = Instant::now();
        let mut quiet = 0;
        while quiet < QUIET_POLLS && start.elapsed() < SETTLE {
            let Ok(group) = nix::unistd::tcgetpgrp(&self.master) else {
                return;
            };
            // No foreground group: the program has not taken the terminal
            // yet, or has ended. Group 0 is no group to look at (in a PID
            // namespace, every process whose group lies outside it shows 0,
            // this one included).
            if group.as_raw() <= 0 && self.has_ended() {
                return;
            }
            if group.as_raw() <= 0 || group_running(group.as_raw()) {
                quiet = 0;
            } else {
                quiet += 1;
            }
            if quiet < QUIET_POLLS {
                std::thread::sleep(POLL);
            }
        }
    }

    fn send(&self, bytes: &[u8]) -> Result<(), SessionError> {
        self.settle();
        let mut rest = bytes;
        while !rest.is_empty() {
            match nix::unistd::write(&self.master, rest) {
                Ok(n) => rest = &rest[n..],
                Err(Errno::EINTR) => {}
                Err(e) => return Err(SessionError::Type(e)),
            }
        }
        Ok(())
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        // The program leads its own session and process group: whatever it
        // left running there goes with it.
        let _ = kill(Pid::from_raw(-self.pid.as_raw()), Signal::SIGKILL);
        if self.status.is_none() {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
    }
}

/// How long input waits at most for the foreground programs to settle (a
/// busy program gets its input anyway).
const SETTLE: Duration = Duration::from_secs(2);
/// How often the foreground is looked at, and how many looks in a row must
/// find it asleep (a shell's child that waits for its siblings before its
/// exec sleeps too, but only for a moment).
const POLL: Duration = Duration::from_millis(2);
const QUIET_POLLS: u32 = 3;

/// Whether a process of group `group` is running or runnable.
fn group_running(group: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        if !name
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        {
            return false;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // After the command name: state, ppid, pgrp.
        let mut fields = stat
            .rsplit_once(") ")
            .map(|(_, r)| r)
            .unwrap_or("")
            .split(' ');
        let state = fields.next().unwrap_or("");
        let pgrp = fields.nth(1).and_then(|g| g.parse::<i32>().ok());
        pgrp == Some(group) && state == "R"
    })
}

/// Why a session failed: at which line of the book, why, and whether its
/// time ran out.
struct Failed {
    line: usize,
    message: String,
    timed_out: bool,
}

impl Failed {
    fn at(line: usize, message: String) -> Self {
        Failed {
            line,
            message,
            timed_out: false,
        }
    }

    fn timed_out(line: usize, message: String) -> Self {
        Failed {
            timed_out: true,
            ..Failed::at(line, message)
        }
    }
}

/// Plays `session`; each wait is bounded by `timeout`.
pub fn run(session: &Session, timeout: Duration) -> Report {
    let mut expecter = match Expecter::new(session) {
        Ok(e) => e,
        Err(m) => return failed(m.line, m.message, String::new()),
    };
    let mut program = match Program::start(&session.command) {
        Ok(p) => p,
        Err(e) => return failed(session.line, e.to_string(), String::new()),
    };
    let mut screen = Screen::new();
    let played = play(session, &mut expecter, &mut program, &mut screen, timeout)
        .and_then(|()| end(session, &mut program, &mut screen, timeout));
    match played {
        Ok(()) => Report {
            passed: true,
            line: session.line,
            message: String::new(),
            timed_out: false,
            screen: screen.text(),
        },
        Err(f) => Report {
            passed: false,
            line: f.line,
            message: f.message,
            timed_out: f.timed_out,
            screen: screen.text(),
        },
    }
}

/// Plays the session's lines to their end: each line's time starts when
/// the one before it is done.
fn play(
    session: &Session,
    expecter: &mut Expecter,
    program: &mut Program,
    screen: &mut Screen,
    timeout: Duration,
) -> Result<(), Failed> {
    let mut position = expecter.position();
    let mut deadline = Instant::now() + timeout;
    loop {
        let next = expecter.next(screen);
        if expecter.position() != position {
            position = expecter.position();
            deadline = Instant::now() + timeout;
        }
        match next.map_err(|m| Failed::at(m.line, m.message))? {
            Next::Done => return Ok(()),
            Next::Send(bytes) => program.send(&bytes).map_err(|e| {
                let line = expecter.position().saturating_sub(1);
                let line = session.lines.get(line).map_or(session.line, |l| l.line);
                Failed::at(line, e.to_string())
            })?,
            Next::Wait => {
                let line = expecter.waiting_for().map_or(session.line, |l| l.line);
                wait(expecter, program, screen, deadline, timeout).map_err(
                    |(message, timed_out)| Failed {
                        line,
                        message,
                        timed_out,
                    },
                )?
            }
        }
    }
}

/// Waits until `deadline` for the program to print something (or end);
/// fails, with whether time ran out, when it ended or nothing came.
fn wait(
    expecter: &Expecter,
    program: &mut Program,
    screen: &mut Screen,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), (String, bool)> {
    if program.status.is_none() && program.hung_up {
        // It closed the terminal: learn how it ended.
        let left = deadline.saturating_duration_since(Instant::now());
        if let Ok(true) = program.wait(screen, left) {
            return Ok(());
        }
    }
    if program.ended() {
        if !program.hung_up && program.poll_master() {
            program.read(screen);
            return Ok(());
        }
        let how = match program.status {
            Some(code) => format!("the program ended (exit code {code})"),
            None => "the program closed its terminal".to_string(),
        };
        let message = format!("{how} while waiting for {}", expecter.describe());
        return Err((message, false));
    }
    let left = deadline.saturating_duration_since(Instant::now());
    match program.wait(screen, left) {
        Err(e) => Err((e.to_string(), false)),
        Ok(false) => Err((
            format!(
                "timed out after {} waiting for {}",
                crate::duration::display(timeout),
                expecter.describe()
            ),
            true,
        )),
        Ok(true) => Ok(()),
    }
}

/// The session is over: a program that is still running once it waits
/// for input is hung up, unless a last line `[N]` says it ends; then its
/// exit code is checked.
fn end(
    session: &Session,
    program: &mut Program,
    screen: &mut Screen,
    timeout: Duration,
) -> Result<(), Failed> {
    let deadline = Instant::now() + timeout;
    let mut hung_up_by_us = false;
    if session.exit.is_none() {
        program.settle();
        while program.status.is_none() && matches!(program.wait(screen, Duration::ZERO), Ok(true)) {
        }
        if program.status.is_none() {
            hung_up_by_us = true;
            let _ = kill(Pid::from_raw(-program.pid.as_raw()), Signal::SIGHUP);
        }
    }
    while program.status.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        match program.wait(screen, left) {
            Ok(true) => {}
            Ok(false) if hung_up_by_us => break,
            Ok(false) => {
                let message = format!(
                    "the program still runs {} after the last line of the session, which says it ends; end it there (`exit`, `<Ctrl+d>`, `<Ctrl+a q>`...)",
                    crate::duration::display(timeout)
                );
                let line = session.lines.last().map_or(session.line, |l| l.line);
                return Err(Failed::timed_out(line, message));
            }
            Err(e) => return Err(Failed::at(session.line, e.to_string())),
        }
    }
    let want = session.exit.unwrap_or(0);
    match program.status {
        Some(code) if code != want && !hung_up_by_us => Err(Failed::at(
            session.line,
            format!("the program ended with exit code {code}, expected {want}"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::session::parse;

    fn session(body: &str, prompt: Option<&str>) -> Session {
        parse(0, body, prompt, &mut |l, m| panic!("{l}: {m}")).unwrap()
    }

    const SHELL: &str = "PS1='root# ' bash --norc --noprofile -i";

    #[test]
    fn an_interactive_shell() {
        let start = Instant::now();
        let s = session(
            &format!("$ {SHELL}\nroot# echo $((6*7))\n42\nroot# tty\n/dev/pts/[..]\nroot# exit\n"),
            Some("root# "),
        );
        let report = run(&s, Duration::from_secs(10));
        assert!(report.passed, "{report:?}");
        assert!(start.elapsed() < Duration::from_secs(3));
        assert!(
            report.screen.contains("root# echo $((6*7))\n42\n"),
            "{}",
            report.screen
        );
    }

    #[test]
    fn keys_and_exit_codes() {
        let s = session(
            &format!("$ {SHELL}\nroot# (exit 3)\nroot# echo $?\n3\nroot# echo start; sleep 100\nstart\n<Ctrl+c>\nroot# exit 5<Enter>\n[5]\n"),
            Some("root# "),
        );
        let report = run(&s, Duration::from_secs(10));
        assert!(report.passed, "{report:?}");
    }

    #[test]
    fn a_timeout_shows_the_screen_and_the_line() {
        let s = session(
            &format!("$ {SHELL}\nroot# echo hi\nnever\nroot# exit\n"),
            Some("root# "),
        );
        let start = Instant::now();
        let report = run(&s, Duration::from_millis(500));
        assert!(start.elapsed() < Duration::from_secs(3));
        assert!(!report.passed);
        // `hi` is not `never`: a mismatch, found at once.
        assert_eq!(report.line, 3);
        assert!(!report.timed_out);
        let s = session(
            &format!("$ {SHELL}\nroot# sleep 100\nroot# exit\n"),
            Some("root# "),
        );
        let report = run(&s, Duration::from_millis(300));
        assert!(report.timed_out, "{report:?}");
        assert_eq!(report.line, 3);
        assert!(
            report
                .message
                .contains("timed out after 300ms waiting for the prompt"),
            "{}",
            report.message
        );
        assert!(
            report.screen.ends_with("root# sleep 100\n"),
            "{:?}",
            report.screen
        );
    }

    #[test]
    fn a_program_that_does_not_end() {
        // Hung up at the end, like a closed window...
        let s = session("$ cat\n<Enter>\n", None);
        let start = Instant::now();
        let report = run(&s, Duration::from_secs(5));
        assert!(report.passed, "{report:?}");
        assert!(start.elapsed() < Duration::from_secs(3));
        // ...unless the script says it ends.
        let s = session("$ cat\n<Enter>\n[0]\n", None);
        let report = run(&s, Duration::from_millis(300));
        assert!(report.timed_out);
        assert!(report.message.contains("still runs"), "{}", report.message);
        let s = session("$ sh -c 'exit 4'\n", None);
        let report = run(&s, Duration::from_secs(5));
        assert!(
            report.message.contains("exit code 4, expected 0"),
            "{report:?}"
        );
        let s = session("$ echo bye\nbye\nmore\n", None);
        let report = run(&s, Duration::from_secs(5));
        assert!(
            report
                .message
                .contains("the program ended (exit code 0) while waiting for line 3"),
            "{report:?}"
        );
    }
}
