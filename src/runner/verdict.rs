//! Judging a step that ran: its exit status, its output against the
//! expected output (of a transcript, an `expect` block or a checked file),
//! and with `--bless` the new expected body instead of a failure.

use std::time::Duration;

use super::transcript;
use crate::matcher::{self, Captures, Context, Shown};
use crate::model::{ExpectedExit, Location, Step, StepKind};
use crate::outcome::{Failure, Status};
use crate::process::Exit;

/// A step that ran, as the supervisor returned it.
pub struct Ran<'a> {
    pub step: &'a Step,
    /// The `expect` block after the step, if any.
    pub expect: Option<&'a Step>,
    /// The command or file, as a failure names it.
    pub command: &'a str,
    pub exit: Exit,
    pub output: &'a str,
    pub timeout: Duration,
    /// What earlier steps of the recipe captured.
    pub bound: &'a Captures,
}

/// A step that did not pass.
pub struct StepError {
    pub status: Status,
    pub failure: Box<Failure>,
}

impl StepError {
    /// A failure of `step` about `command`, without output.
    pub fn failed(step: &Step, command: &str, message: String) -> StepError {
        StepError {
            status: Status::Failed,
            failure: Box::new(Failure {
                step: step.location.clone(),
                kind: step.kind,
                command: command.to_string(),
                message,
                expected: None,
                actual: None,
                output: String::new(),
                captures: Captures::new(),
            }),
        }
    }
}

/// A new body for a step (at `offset` after the step that ran: 1 for its
/// `expect` block), produced by `--bless`.
pub struct Blessing {
    pub offset: usize,
    pub body: String,
}

/// A step that passed (or was blessed): what it captured for the later
/// steps, and its new body.
#[derive(Default)]
pub struct Passed {
    pub captures: Captures,
    pub blessing: Option<Blessing>,
}

impl Ran<'_> {
    /// A failure of this step, with its output and the mismatch, if any.
    fn error(
        &self,
        message: String,
        expected: Option<Vec<String>>,
        actual: Option<String>,
    ) -> StepError {
        let mut e = StepError::failed(self.step, self.command, message);
        // Transcripts as a terminal shows them: no markers.
        e.failure.output = shown(self.step, self.output);
        e.failure.expected = expected;
        e.failure.actual = actual;
        e.failure.captures = self.bound.clone();
        e
    }
}

type Verdict = Result<Passed, StepError>;

fn passed(captures: Captures) -> Verdict {
    Ok(Passed {
        captures,
        blessing: None,
    })
}

fn blessed(offset: usize, body: String, captures: Captures) -> Verdict {
    Ok(Passed {
        captures,
        blessing: Some(Blessing { offset, body }),
    })
}

/// Whether the step passed; with `bless`, an output mismatch becomes a new
/// body for the block that holds the expected output.
pub fn judge(ran: &Ran, bless: bool) -> Verdict {
    let (step, exit, output) = (ran.step, ran.exit, ran.output);
    let ended = |status: Status, message: String| {
        let mut e = ran.error(message, None, None);
        e.status = status;
        Err(e)
    };
    match exit {
        Exit::TimedOut => {
            let after = crate::duration::display(ran.timeout);
            return ended(Status::TimedOut, format!("timed out after {after}"));
        }
        Exit::Interrupted => return ended(Status::Interrupted, "interrupted".into()),
        _ => {}
    }
    match step.kind {
        StepKind::Console if step.session.is_some() => {
            let session = step.session.as_ref().expect("checked");
            super::session::judge(ran, session).and_then(|()| passed(Captures::new()))
        }
        StepKind::Console => match transcript::check(step, output, exit, ran.bound) {
            Ok(captures) => passed(captures),
            Err(m) if bless && m.blessable => match transcript::blessed(step, output, ran.bound) {
                Some((body, captures)) => blessed(0, body, captures),
                None => Err(ran.error(m.message, m.expected, m.actual)),
            },
            Err(m) => {
                let mut e = ran.error(m.message, m.expected, m.actual);
                e.failure.step = Location {
                    path: step.location.path.clone(),
                    line: m.line,
                };
                e.failure.command = format!("$ {}", m.command);
                Err(e)
            }
        },
        StepKind::File | StepKind::Check if exit != Exit::Code(0) => {
            Err(ran.error(format!("failed with {exit}"), None, None))
        }
        StepKind::Check => expected_output(ran, step, 0, bless),
        StepKind::File | StepKind::Expect => passed(Captures::new()),
        StepKind::Script | StepKind::Rust => {
            let ok = match step.exit {
                ExpectedExit::Any => !matches!(exit, Exit::Signal(_)),
                ExpectedExit::Code(c) => exit == Exit::Code(c),
            };
            if !ok {
                let want = match step.exit {
                    ExpectedExit::Any => "any exit code".to_string(),
                    ExpectedExit::Code(c) => format!("exit code {c}"),
                };
                let message = format!("ended with {exit}, expected {want}");
                return Err(ran.error(message, None, None));
            }
            match ran.expect {
                Some(expect) => expected_output(ran, expect, 1, bless),
                None => passed(Captures::new()),
            }
        }
    }
}

/// The output against the body of `holder` (the checked file, or the
/// `expect` block `offset` steps after the step); a failure points at it.
fn expected_output(ran: &Ran, holder: &Step, offset: usize, bless: bool) -> Verdict {
    let expected: Vec<String> = holder.body.lines().map(str::to_string).collect();
    match compare(&expected, ran.output, ran.bound) {
        Ok(captures) => passed(captures),
        Err(Failed {
            blessable: true, ..
        }) if bless => {
            let lines = blessed_lines(&expected, ran.output, ran.bound, Context::Block);
            let captures = compare(&lines, ran.output, ran.bound).unwrap_or_default();
            blessed(offset, lines_body(&lines), captures)
        }
        Err(Failed { message: m, .. }) => {
            let mut e = ran.error(m, Some(expected), Some(ran.output.to_string()));
            e.failure.step = holder.location.clone();
            Err(e)
        }
    }
}

/// What `--verbose` shows of a step's output: transcripts as a terminal
/// would show them, the rest as printed.
pub fn shown(step: &Step, output: &str) -> String {
    match step.kind {
        StepKind::Console if step.session.is_some() => super::session::shown(output),
        StepKind::Console => transcript::render(step, output),
        _ => output.to_string(),
    }
}

fn lines_body(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Why output does not match: the message, and whether `--bless` may
/// rewrite the expected lines (not when they do not even compile).
pub struct Failed {
    pub message: String,
    pub blessable: bool,
}

/// Compares output with expected lines; returns what they captured.
pub fn compare(expected: &[String], actual: &str, bound: &Captures) -> Result<Captures, Failed> {
    let patterns = matcher::compile(expected, bound).map_err(|e| Failed {
        message: e.to_string(),
        blessable: false,
    })?;
    let lines: Vec<&str> = actual.lines().collect();
    matcher::check(&patterns, &lines).map_err(|m| Failed {
        message: m.to_string(),
        blessable: true,
    })
}

/// Expected lines rewritten to match `actual`, keeping every expected line
/// whose pattern still matches, and writing the other output lines so that
/// they read back as themselves.
pub fn blessed_lines(
    expected: &[String],
    actual: &str,
    bound: &Captures,
    context: Context,
) -> Vec<String> {
    let lines: Vec<&str> = actual.lines().collect();
    let escape = |l: &str| matcher::escape_line(l, context);
    match matcher::compile(expected, bound) {
        Ok(patterns) => matcher::normalise(expected, &patterns, &lines)
            .into_iter()
            .map(|shown| match shown {
                Shown::Expected(l) => l.to_string(),
                Shown::Actual(l) => escape(l),
            })
            .collect(),
        Err(_) => lines.into_iter().map(escape).collect(),
    }
}
