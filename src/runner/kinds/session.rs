//! Terminal sessions (`console` blocks with the flag `pty`): the step's
//! program is `recipes __session` (see [`crate::session`]), run where steps
//! run, with the session on stdin; its report, at the end of the output,
//! decides the step.

use std::ffi::OsString;
use std::time::Duration;

use crate::env::Environment;
use crate::matcher::Captures;
use crate::model::{Location, Session, Step};
use crate::outcome::Status;
use crate::runner::step::Prepared;
use crate::runner::verdict::{passed, Ran, StepError, Verdict};
use crate::session::{Report, Request, REPORT_MARK};

/// Why a session's driver cannot be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The driver is this binary, run again.
    #[error("cannot find the recipes binary: {0}")]
    NoBinary(std::io::Error),
    /// The session's request, as JSON.
    #[error("{0}")]
    Request(serde_json::Error),
}

/// How reports name a session: its `$ ` line.
pub fn command(session: &Session) -> String {
    format!("$ {}", session.command)
}

/// The program that plays `session`, each wait bounded by `timeout`.
pub fn prepare(
    step: &Step,
    session: &Session,
    env: &dyn Environment,
    timeout: Duration,
) -> Result<Prepared, StartError> {
    let exe = std::env::current_exe().map_err(StartError::NoBinary)?;
    let request = Request {
        session: session.clone(),
        timeout_ms: timeout.as_millis().try_into().unwrap_or(u64::MAX),
    };
    let stdin = serde_json::to_vec(&request).map_err(StartError::Request)?;
    let program = env.inside(&exe).into_os_string();
    let args = vec![OsString::from("__session")];
    Ok(Prepared::new(
        step,
        program,
        args,
        Some(stdin),
        command(session),
    ))
}

/// The whole session's bound: each of its waits has `timeout`, and the
/// driver stops itself at the first that runs out; this is a backstop.
pub fn overall_timeout(session: &Session, timeout: Duration) -> Duration {
    let waits = u32::try_from(session.lines.len() + 2).unwrap_or(u32::MAX);
    timeout.saturating_mul(waits) + crate::process::GRACE
}

/// The report the driver printed, if it got that far.
fn report(output: &str) -> Option<Report> {
    let (_, json) = output.rsplit_once(REPORT_MARK)?;
    serde_json::from_str(json.trim_end()).ok()
}

/// What `--verbose` shows: the screen.
pub fn shown(output: &str) -> String {
    match report(output) {
        Some(r) => r.screen,
        None => output.to_string(),
    }
}

/// Whether the session passed; a failure points at the line it was about
/// and shows the screen so far.
pub fn judge(ran: &Ran, session: &Session) -> Verdict {
    let Some(report) = report(ran.output) else {
        let mut e = StepError::failed(
            ran.step,
            ran.command,
            format!("the session ended with {} before its report", ran.exit),
        );
        e.failure.output = ran.output.to_string();
        return Err(e);
    };
    if report.passed {
        return passed(Captures::new());
    }
    let text = session
        .lines
        .iter()
        .find(|l| l.line == report.line)
        .map_or_else(|| ran.command.to_string(), |l| l.text.clone());
    let mut e = StepError::failed(ran.step, &text, report.message);
    e.failure.step = Location {
        path: ran.step.location.path.clone(),
        line: report.line,
    };
    e.failure.output = if report.screen.ends_with('\n') || report.screen.is_empty() {
        report.screen
    } else {
        format!("{}\n", report.screen)
    };
    if report.timed_out {
        e.status = Status::TimedOut;
    }
    Err(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, SessionAction, SessionLine};
    use crate::process::Exit;
    use crate::runner::kinds::cases::{line, ran, step};

    fn session() -> Session {
        Session {
            line: 2,
            command: "python3".into(),
            prompt: Some(">>> ".into()),
            lines: vec![SessionLine {
                line: 3,
                text: ">>> 1 + 1".into(),
                action: SessionAction::Prompt {
                    input: b"1 + 1\r".to_vec(),
                },
            }],
            exit: None,
        }
    }

    /// What the driver prints: the program's output, then its report.
    fn printed(passed: bool, line: usize, timed_out: bool, screen: &str) -> String {
        let report = Report {
            passed,
            line,
            message: if passed {
                String::new()
            } else {
                "no prompt".into()
            },
            timed_out,
            screen: screen.into(),
        };
        let json = serde_json::to_string(&report).unwrap();
        format!("{REPORT_MARK}{json}\n")
    }

    #[test]
    fn judge_reads_the_report() {
        // (row, exit of the driver, its output, verdict, output shown)
        let rows: &[(&str, Exit, String, &str, &str)] = &[
            (
                "passed",
                Exit::Code(0),
                printed(true, 0, false, ">>> 2\n"),
                "passed",
                "",
            ),
            (
                "failed on a line",
                Exit::Code(1),
                printed(false, 3, false, ">>> "),
                "Failed at 3 `>>> 1 + 1`: no prompt",
                ">>> \n",
            ),
            (
                "failed on its start",
                Exit::Code(1),
                printed(false, 2, false, ""),
                "Failed at 2 `$ python3`: no prompt",
                "",
            ),
            (
                "a wait ran out",
                Exit::Code(1),
                printed(false, 3, true, "x\n"),
                "TimedOut at 3 `>>> 1 + 1`: no prompt",
                "x\n",
            ),
            (
                "no report",
                Exit::Signal(9),
                "half".into(),
                "Failed at 1 `$ python3`: the session ended with signal SIGKILL before its report",
                "half",
            ),
        ];
        let session = session();
        let step = step(1, Action::Session(session.clone()), "");
        let bound = Captures::new();
        for (row, exit, output, want, shown) in rows {
            let command = command(&session);
            let ran = Ran {
                command: &command,
                ..ran(&step, *exit, output, &bound)
            };
            let verdict = judge(&ran, &session);
            assert_eq!(line(&verdict), *want, "row `{row}`");
            let output = verdict.err().map(|e| e.failure.output).unwrap_or_default();
            assert_eq!(output, *shown, "row `{row}`");
        }
    }

    #[test]
    fn verbose_shows_the_screen() {
        assert_eq!(shown(&printed(true, 0, false, ">>> 2\n")), ">>> 2\n");
        assert_eq!(shown("no report"), "no report");
    }

    #[test]
    fn every_wait_has_the_timeout() {
        let timeout = Duration::from_secs(10);
        let all = overall_timeout(&session(), timeout);
        assert_eq!(all, Duration::from_secs(30) + crate::process::GRACE);
    }
}
