//! Console transcripts at run time: one bash script that runs every `$ `
//! command in one shell (as a reader types them in one terminal) and prints
//! a marker after each, then the output cut back into each command's part.

use super::verdict::{blessed_lines, compare};
use crate::matcher::{Captures, Context};
use crate::model::Step;
use crate::process::Exit;

/// Marker printed after each transcript command, with its index and status.
const MARK: &str = "\u{1}recipes-transcript-mark";

/// The script that runs a transcript's commands.
pub fn script(step: &Step) -> String {
    let mut script = String::from("exec 2>&1\n");
    for (i, entry) in step.transcript.iter().enumerate() {
        script.push_str(&entry.command);
        script.push('\n');
        script.push_str(&format!("printf '\\n{MARK} {i} %d\\n' \"$?\"\n"));
    }
    script
}

/// Each command's output and exit code, cut out of the output of
/// [`script`]; `None` from the first command that did not finish.
fn split(step: &Step, output: &str) -> Vec<Option<(String, i32)>> {
    let mut rest = output;
    let mut parts = Vec::new();
    for i in 0..step.transcript.len() {
        let marker = format!("\n{MARK} {i} ");
        let Some(pos) = rest.find(&marker) else {
            parts.resize(step.transcript.len(), None);
            break;
        };
        let after = &rest[pos + marker.len()..];
        let (code, tail) = after.split_once('\n').unwrap_or((after, ""));
        parts.push(Some((
            rest[..pos].to_string(),
            code.trim().parse().unwrap_or(-1),
        )));
        rest = tail;
    }
    parts
}

/// A transcript's output as a reader would see it in a terminal.
pub fn render(step: &Step, output: &str) -> String {
    let mut text = String::new();
    for (entry, part) in step.transcript.iter().zip(split(step, output)) {
        text.push_str(&format!("$ {}\n", entry.command));
        let Some((segment, code)) = part else {
            break;
        };
        text.push_str(&segment);
        if !segment.is_empty() && !segment.ends_with('\n') {
            text.push('\n');
        }
        if code != 0 {
            text.push_str(&format!("[{code}]\n"));
        }
    }
    text
}

/// The first command of a transcript whose output or exit code differs.
pub struct Mismatch {
    /// The line of its `$ ` in the page.
    pub line: usize,
    pub command: String,
    pub message: String,
    pub expected: Option<Vec<String>>,
    pub actual: Option<String>,
    /// Whether `--bless` may rewrite the transcript.
    pub blessable: bool,
}

/// Checks each command of a transcript against its output; returns what
/// its patterns captured (a capture set by one command binds the next).
pub fn check(
    step: &Step,
    output: &str,
    exit: Exit,
    bound: &Captures,
) -> Result<Captures, Mismatch> {
    let mut bound = bound.clone();
    let mut captures = Captures::new();
    for (entry, part) in step.transcript.iter().zip(split(step, output)) {
        let at =
            |message: String, expected: Option<Vec<String>>, actual: Option<String>| Mismatch {
                line: entry.line,
                command: entry.command.clone(),
                message,
                expected,
                actual,
                blessable: true,
            };
        let Some((actual, code)) = part else {
            return Err(at(
                format!("the shell stopped before this command finished ({exit}); did a command exit the shell?"),
                Some(entry.expected.clone()),
                Some(String::new()),
            ));
        };
        match compare(&entry.expected, &actual, &bound) {
            Ok(found) => {
                bound.extend(found.clone());
                captures.extend(found);
            }
            Err(f) => {
                let mut m = at(f.message, Some(entry.expected.clone()), Some(actual));
                m.blessable = f.blessable;
                return Err(m);
            }
        }
        if code != entry.exit {
            return Err(at(
                format!("exited with code {code}, expected {}", entry.exit),
                None,
                Some(actual),
            ));
        }
    }
    Ok(captures)
}

/// A transcript's body rewritten to what its commands printed, with what
/// it captures, or `None` when the shell stopped early (nothing safe to
/// write).
pub fn blessed(step: &Step, output: &str, bound: &Captures) -> Option<(String, Captures)> {
    let mut body = String::new();
    let mut bound = bound.clone();
    let mut captures = Captures::new();
    for (entry, part) in step.transcript.iter().zip(split(step, output)) {
        let (actual, code) = part?;
        body.push_str(&format!("$ {}\n", entry.command));
        let lines = blessed_lines(&entry.expected, &actual, &bound, Context::Transcript);
        if let Ok(found) = compare(&lines, &actual, &bound) {
            bound.extend(found.clone());
            captures.extend(found);
        }
        for line in lines {
            body.push_str(&line);
            body.push('\n');
        }
        if code != 0 {
            body.push_str(&format!("[{code}]\n"));
        }
    }
    Some((body, captures))
}
