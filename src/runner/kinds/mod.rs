//! Each kind of step, one file each: `prepare` makes the program that runs
//! it, and `judge` gives the verdict on what it did. This file only picks
//! the kind by the step's [`Action`], and judges what every kind shares: a
//! step that ran out of time or was interrupted.

mod file;
mod rust;
mod script;
mod session;
mod transcript;

#[cfg(test)]
mod cases;

use std::path::Path;
use std::time::Duration;

use crate::env::Environment;
use crate::matcher::Captures;
use crate::model::{Action, Step};
use crate::outcome::Status;
use crate::process::{Exit, Supervisor};
use crate::runner::step::Prepared;
use crate::runner::verdict::{passed, Ran, Verdict};

/// A step that could not be made into a program (a rust step that does not
/// compile, a session without its driver), with the name reports give it.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct PrepareError {
    pub command: String,
    pub kind: PrepareErrorKind,
}

/// What kept a step from becoming a program.
#[derive(Debug, thiserror::Error)]
pub enum PrepareErrorKind {
    #[error(transparent)]
    Compile(#[from] rust::CompileError),
    #[error(transparent)]
    Session(#[from] session::StartError),
}

/// The program for `step`; `None` for an `expect` block, which does not
/// run. `rootfs` is `$ROOTFS` as the step sees it; `env` says where a
/// compiled program appears to it; `timeout` bounds each wait of a session.
pub fn prepare(
    step: &Step,
    env: &dyn Environment,
    rootfs: &str,
    cache: &Path,
    supervisor: &Supervisor,
    timeout: Duration,
) -> Result<Option<Prepared>, PrepareError> {
    Ok(Some(match &step.action {
        Action::Script { .. } => script::prepare(step),
        Action::Transcript(entries) => transcript::prepare(step, entries),
        Action::Session(s) => {
            session::prepare(step, s, env, timeout).map_err(|e| PrepareError {
                command: session::command(s),
                kind: e.into(),
            })?
        }
        Action::Rust { .. } => {
            rust::prepare(step, env, cache, supervisor).map_err(|e| PrepareError {
                command: rust::COMMAND.into(),
                kind: e.into(),
            })?
        }
        Action::WriteFile { path, mode } => file::prepare_write(step, path, *mode, rootfs),
        Action::CheckFile { path } => file::prepare_check(step, path, rootfs),
        Action::Expect => return Ok(None),
    }))
}

/// How long the step may run: `timeout`, but a session bounds each of its
/// waits itself and gets a backstop for all of them.
pub fn bound(step: &Step, timeout: Duration) -> Duration {
    match &step.action {
        Action::Session(s) => session::overall_timeout(s, timeout),
        _ => timeout,
    }
}

/// Whether the step passed; with `bless`, an output mismatch becomes a new
/// body for the block that holds the expected output.
pub fn judge(ran: &Ran, bless: bool) -> Verdict {
    let ended = |status: Status, message: String| {
        let mut e = ran.error(message, None, None);
        e.failure.output = shown(ran.step, ran.output);
        e.status = status;
        Err(e)
    };
    match ran.exit {
        Exit::TimedOut => {
            let after = crate::duration::display(ran.timeout);
            return ended(Status::TimedOut, format!("timed out after {after}"));
        }
        Exit::Interrupted => return ended(Status::Interrupted, "interrupted".into()),
        _ => {}
    }
    match &ran.step.action {
        Action::Script { exit } => script::judge(ran, *exit, bless),
        Action::Transcript(entries) => transcript::judge(ran, entries, bless),
        Action::Session(s) => session::judge(ran, s),
        Action::Rust { exit } => rust::judge(ran, *exit, bless),
        Action::WriteFile { .. } => file::judge_write(ran),
        Action::CheckFile { .. } => file::judge_check(ran, bless),
        Action::Expect => passed(Captures::new()),
    }
}

/// What `--verbose` shows of a step's output: transcripts and sessions as
/// a terminal would show them, the rest as printed.
pub fn shown(step: &Step, output: &str) -> String {
    match &step.action {
        Action::Transcript(entries) => transcript::render(entries, output),
        Action::Session(_) => session::shown(output),
        _ => output.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ExpectedExit, TranscriptEntry};
    use cases::{line, ran, step};

    #[test]
    fn judge_what_every_kind_shares() {
        let script = Action::Script {
            exit: ExpectedExit::Code(0),
        };
        let transcript = Action::Transcript(vec![TranscriptEntry {
            line: 2,
            command: "sleep 1000".into(),
            expected: vec![],
            exit: 0,
        }]);
        // (row, action, exit, output, verdict, output shown)
        let rows: &[(&str, &Action, Exit, &str, &str, &str)] = &[
            (
                "a script that runs out of time",
                &script,
                Exit::TimedOut,
                "x\n",
                "TimedOut at 1 `cmd`: timed out after 1m 30s",
                "x\n",
            ),
            (
                "a script interrupted",
                &script,
                Exit::Interrupted,
                "x\n",
                "Interrupted at 1 `cmd`: interrupted",
                "x\n",
            ),
            // Whatever the transcript printed, as a terminal shows it.
            (
                "a transcript that runs out of time",
                &transcript,
                Exit::TimedOut,
                "",
                "TimedOut at 1 `cmd`: timed out after 1m 30s",
                "$ sleep 1000\n",
            ),
            (
                "an expect block",
                &Action::Expect,
                Exit::Code(0),
                "",
                "passed",
                "",
            ),
        ];
        let bound = Captures::new();
        for &(row, action, exit, output, want, shown) in rows {
            let step = step(1, action.clone(), "");
            let verdict = judge(&ran(&step, exit, output, &bound), false);
            assert_eq!(line(&verdict), want, "row `{row}`");
            let output = verdict.err().map(|e| e.failure.output).unwrap_or_default();
            assert_eq!(output, shown, "row `{row}`");
        }
    }

    #[test]
    fn only_a_session_has_a_bound_of_its_own() {
        let timeout = Duration::from_secs(10);
        let script = step(
            1,
            Action::Script {
                exit: ExpectedExit::Any,
            },
            "",
        );
        assert_eq!(bound(&script, timeout), timeout);
        let session = crate::model::Session {
            line: 2,
            command: "sh".into(),
            prompt: None,
            lines: vec![],
            exit: None,
        };
        let session = step(1, Action::Session(session), "");
        assert!(bound(&session, timeout) > timeout);
    }
}
