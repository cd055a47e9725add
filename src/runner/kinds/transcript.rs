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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Action;
    use crate::runner::kinds::cases::{line, ran, step};

    /// `$ command` on `line`, which must print `expected` and end with `exit`.
    fn entry(line: usize, command: &str, expected: &[&str], exit: i32) -> TranscriptEntry {
        TranscriptEntry {
            line,
            command: command.into(),
            expected: expected.iter().map(|l| l.to_string()).collect(),
            exit,
        }
    }

    /// What bash printed running the transcript, and how it ended.
    fn run(entries: &[TranscriptEntry]) -> (Exit, String) {
        let step = step(1, Action::Transcript(entries.to_vec()), "");
        let prepared = prepare(&step, entries);
        let out = std::process::Command::new(&prepared.program.program)
            .args(&prepared.program.args)
            .env_clear()
            .output()
            .unwrap();
        let exit = Exit::Code(out.status.code().unwrap());
        (exit, String::from_utf8(out.stdout).unwrap())
    }

    #[test]
    fn judge_each_command_as_bash_ran_it() {
        let rows: &[(&str, Vec<TranscriptEntry>, bool, &str)] = &[
            ("prints what it says", vec![entry(2, "echo hi", &["hi"], 0)], false, "passed"),
            ("prints something else", vec![entry(2, "echo hi", &["ho"], 0)], false,
                "Failed at 2 `$ echo hi`: output differs from the expected output"),
            ("blessed", vec![entry(2, "echo hi", &["ho"], 0), entry(4, "echo '[IP]'; false", &[], 0)], true,
                "blessed +0 \"$ echo hi\\nhi\\n$ echo '[IP]'; false\\n[IP] (literal)\\n[1]\\n\""),
            ("another exit code", vec![entry(2, "false", &[], 0)], false,
                "Failed at 2 `$ false`: exited with code 1, expected 0"),
            ("its exit code", vec![entry(2, "false", &[], 1)], false, "passed"),
            ("output before the exit code", vec![entry(2, "echo a; false", &["b"], 1)], false,
                "Failed at 2 `$ echo a; false`: output differs from the expected output"),
            ("a capture binds the next command's patterns",
                vec![entry(2, "echo 42", &["[INT:n]"], 0), entry(4, "echo 42", &["[INT:n]"], 0)],
                false, "passed n=42"),
            ("a capture holds its value",
                vec![entry(2, "echo 42", &["[INT:n]"], 0), entry(4, "echo 7", &["[INT:n]"], 0)],
                false,
                "Failed at 4 `$ echo 7`: output differs from the expected output"),
            ("a command that ends the shell",
                vec![entry(2, "exit 3", &[], 0), entry(3, "echo after", &["after"], 0)], false,
                "Failed at 2 `$ exit 3`: the shell stopped before this command finished (exit code 3); did a command exit the shell?"),
            // Nothing safe to write: the failure stays on the block.
            ("a command that ends the shell, blessed", vec![entry(2, "exit 3", &[], 0)], true,
                "Failed at 1 ``: the shell stopped before this command finished (exit code 3); did a command exit the shell?"),
            ("a pattern that does not compile is not blessed", vec![entry(2, "echo x", &["[NOPE]"], 0)], true,
                "Failed at 2 `$ echo x`: unknown placeholder `[NOPE]` (known: [..], [IP], [MAC], [INT], [HEX], [UUID], [DATE], [DURATION]; end the line with ` (literal)` to match it as plain text)"),
        ];
        let bound = Captures::new();
        for (row, entries, bless, want) in rows {
            let (exit, output) = run(entries);
            let step = step(1, Action::Transcript(entries.clone()), "");
            let ran = Ran {
                command: "",
                ..ran(&step, exit, &output, &bound)
            };
            assert_eq!(line(&judge(&ran, entries, *bless)), *want, "row `{row}`");
        }
    }

    #[test]
    fn a_failure_shows_the_output_as_a_terminal_would() {
        let entries = [
            entry(2, "echo a", &["a"], 0),
            entry(4, "printf b; exit 2", &[], 0),
        ];
        let (exit, output) = run(&entries);
        assert!(output.contains(MARK), "{output:?}");
        let step = step(1, Action::Transcript(entries.to_vec()), "");
        let bound = Captures::new();
        let Err(e) = judge(&ran(&step, exit, &output, &bound), &entries, false) else {
            panic!("passed");
        };
        assert_eq!(e.failure.output, "$ echo a\na\n$ printf b; exit 2\n");
        assert_eq!(
            render(&entries[..1], "a\n\n\u{1}recipes-transcript-mark 0 1\n"),
            "$ echo a\na\n[1]\n"
        );
    }
}
