//! What judging a step speaks of, whatever its kind (each kind judges in
//! `runner/kinds/`): the step that ran, the verdict (passed with what it
//! captured, or blessed with a new body, or a failure), and output against
//! expected lines, with the lines `--bless` writes instead.

use std::time::Duration;

use crate::matcher::{self, Captures, Context, Shown};
use crate::model::Step;
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
                kind: step.kind(),
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
    /// A failure of this step, with its output as printed (a kind that
    /// shows it otherwise replaces it), and the mismatch, if any.
    pub fn error(
        &self,
        message: String,
        expected: Option<Vec<String>>,
        actual: Option<String>,
    ) -> StepError {
        let mut e = StepError::failed(self.step, self.command, message);
        e.failure.output = self.output.to_string();
        e.failure.expected = expected;
        e.failure.actual = actual;
        e.failure.captures = self.bound.clone();
        e
    }
}

/// Whether a step passed, and what then.
pub type Verdict = Result<Passed, StepError>;

/// Passed, having captured `captures`.
pub fn passed(captures: Captures) -> Verdict {
    Ok(Passed {
        captures,
        blessing: None,
    })
}

/// Passed by `--bless`: the block `offset` steps after the step that ran
/// gets `body`.
pub fn blessed(offset: usize, body: String, captures: Captures) -> Verdict {
    Ok(Passed {
        captures,
        blessing: Some(Blessing { offset, body }),
    })
}

/// The output against the body of `holder` (the checked file, or the
/// `expect` block `offset` steps after the step); a failure points at it.
pub fn expected_output(ran: &Ran, holder: &Step, offset: usize, bless: bool) -> Verdict {
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
