//! Console transcripts: one bash script that runs every `$ ` command in
//! one shell (as a reader types them in one terminal) and prints a marker
//! after each; its output is cut back into each command's part, which must
//! match the command's expected lines and exit code.

use std::ffi::OsString;

use crate::matcher::{Captures, Context};
use crate::model::{Location, Step, TranscriptEntry};
use crate::process::Exit;
use crate::runner::step::Prepared;
use crate::runner::verdict::{blessed, blessed_lines, compare, passed, Ran, StepError, Verdict};

/// Marker printed after each transcript command, with its index and status.
const MARK: &str = "\u{1}recipes-transcript-mark";

/// bash, without its start files, running [`script`].
pub fn prepare(step: &Step, entries: &[TranscriptEntry]) -> Prepared {
    let script = script(entries);
    let args = ["--noprofile", "--norc", "-c", script.as_str()]
        .map(OsString::from)
        .to_vec();
    Prepared::new(step, "bash", args, None, String::new())
}

/// Whether each command printed its expected lines and ended with its exit
/// code; a failure points at the first that did not. With `bless`, a
/// mismatch becomes the transcript's new body.
pub fn judge(ran: &Ran, entries: &[TranscriptEntry], bless: bool) -> Verdict {
    // Output as a terminal shows it: no markers.
    let error = |m: Mismatch| {
        let mut e = ran.error(m.message, m.expected, m.actual);
        e.failure.output = render(entries, ran.output);
        e
    };
    match check(entries, ran.output, ran.exit, ran.bound) {
        Ok(captures) => passed(captures),
        Err(m) if bless && m.blessable => match blessed_body(entries, ran.output, ran.bound) {
            Some((body, captures)) => blessed(0, body, captures),
            None => Err(error(m)),
        },
        Err(m) => {
            let (line, command) = (m.line, format!("$ {}", m.command));
            let mut e: StepError = error(m);
            e.failure.step = Location {
                path: ran.step.location.path.clone(),
                line,
            };
            e.failure.command = command;
            Err(e)
        }
    }
}

/// The script that runs a transcript's commands.
fn script(entries: &[TranscriptEntry]) -> String {
    let mut script = String::from("exec 2>&1\n");
    for (i, entry) in entries.iter().enumerate() {
        script.push_str(&entry.command);
        script.push('\n');
        script.push_str(&format!("printf '\\n{MARK} {i} %d\\n' \"$?\"\n"));
    }
    script
}

/// Each command's output and exit code, cut out of the output of
/// [`script`]; `None` from the first command that did not finish.
fn split(entries: &[TranscriptEntry], output: &str) -> Vec<Option<(String, i32)>> {
    let mut rest = output;
    let mut parts = Vec::new();
    for i in 0..entries.len() {
        let marker = format!("\n{MARK} {i} ");
        let Some(pos) = rest.find(&marker) else {
            parts.resize(entries.len(), None);
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
pub fn render(entries: &[TranscriptEntry], output: &str) -> String {
    let mut text = String::new();
    for (entry, part) in entries.iter().zip(split(entries, output)) {
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
struct Mismatch {
    /// The line of its `$ ` in the page.
    line: usize,
    command: String,
    message: String,
    expected: Option<Vec<String>>,
    actual: Option<String>,
    /// Whether `--bless` may rewrite the transcript.
    blessable: bool,
}

/// Checks each command of a transcript against its output; returns what
/// its patterns captured (a capture set by one command binds the next).
fn check(
    entries: &[TranscriptEntry],
    output: &str,
    exit: Exit,
    bound: &Captures,
) -> Result<Captures, Mismatch> {
    let mut bound = bound.clone();
    let mut captures = Captures::new();
    for (entry, part) in entries.iter().zip(split(entries, output)) {
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
fn blessed_body(
    entries: &[TranscriptEntry],
    output: &str,
    bound: &Captures,
) -> Option<(String, Captures)> {
    let mut body = String::new();
    let mut bound = bound.clone();
    let mut captures = Captures::new();
    for (entry, part) in entries.iter().zip(split(entries, output)) {
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
