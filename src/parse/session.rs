//! The text of a terminal session (a `console` block with the flag `pty`,
//! DESIGN §8): its first `$ ` line starts the program; after it, a line that
//! starts with the prompt (`prompt=REGEX`) is typed, a line made only of
//! keys (`<Enter>`, `<Ctrl+a q>`) sends them, a last line `[N]` is the
//! program's exit code, and every other line is output to await.
//!
//! Keys are written `<...>`: one or more items separated by spaces, the
//! first a named key (`Enter`, `Tab`, `Esc`, `Backspace`, `Space`, `Up`,
//! `Down`, `Left`, `Right`, `Home`, `End`, `Delete`) or `Ctrl+X` (any
//! letter), the others also single characters (`<Ctrl+a q>`). Only a `<`
//! followed by a capital letter and a word of two characters or more starts
//! a key, so `<file` or `Vec<T>` stay text; an unknown name is an error.

use regex::Regex;

use crate::model::{Session, SessionAction, SessionLine};

/// A piece of a line: text, or a key written `<...>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment<'a> {
    Text(&'a str),
    /// The key as written between `<` and `>`, and its bytes (or why the
    /// name is unknown).
    Key {
        written: &'a str,
        bytes: Result<Vec<u8>, KeyError>,
    },
}

/// A key written `<...>` whose name is unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown key `{item}` in `<{written}>` (known: Enter, Tab, Esc, Backspace, Space, Up, Down, Left, Right, Home, End, Delete, Ctrl+X for a letter X, and after the first key single characters, as in `<Ctrl+a q>`)")]
pub struct KeyError {
    item: String,
    written: String,
}

/// A `prompt=` that is not a regular expression.
#[derive(Debug, thiserror::Error)]
#[error("invalid regular expression in `prompt={prompt}`: {why}")]
pub struct PromptError {
    prompt: String,
    /// The last line of the regex crate's message: what is wrong, without
    /// the drawing.
    why: String,
}

/// The bytes of one named key.
fn named(name: &str) -> Option<&'static [u8]> {
    Some(match name {
        "Enter" => b"\r",
        "Tab" => b"\t",
        "Esc" => b"\x1b",
        "Backspace" => b"\x7f",
        "Space" => b" ",
        "Up" => b"\x1b[A",
        "Down" => b"\x1b[B",
        "Right" => b"\x1b[C",
        "Left" => b"\x1b[D",
        "Home" => b"\x1b[H",
        "End" => b"\x1b[F",
        "Delete" => b"\x1b[3~",
        _ => return None,
    })
}

/// `Ctrl+x` → the control character.
fn control(item: &str) -> Option<u8> {
    let letter = item.strip_prefix("Ctrl+")?;
    match letter.as_bytes() {
        [c] if c.is_ascii_alphabetic() => Some(c.to_ascii_lowercase() - b'a' + 1),
        _ => None,
    }
}

/// The bytes of the items of one `<...>`.
fn key_bytes(written: &str) -> Result<Vec<u8>, KeyError> {
    let mut bytes = Vec::new();
    for (i, item) in written.split(' ').enumerate() {
        if let Some(b) = named(item) {
            bytes.extend_from_slice(b);
        } else if let Some(c) = control(item) {
            bytes.push(c);
        } else if i > 0 && item.chars().count() == 1 {
            bytes.extend_from_slice(item.as_bytes());
        } else {
            return Err(KeyError {
                item: item.to_string(),
                written: written.to_string(),
            });
        }
    }
    Ok(bytes)
}

/// Whether `<inner>` is written as a key (see the module documentation).
fn looks_like_key(inner: &str) -> bool {
    let first = inner.split(' ').next().unwrap_or_default();
    first.len() >= 2
        && first.starts_with(|c: char| c.is_ascii_uppercase())
        && !inner.starts_with(' ')
        && !inner.ends_with(' ')
        && !inner.contains("  ")
        && inner
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '<' && c != '>' || c == ' ')
}

/// Splits a line into text and keys.
pub fn segments(line: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let mut rest = line;
    let mut text_start = 0;
    let mut pos = 0;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let key = after
            .find('>')
            .map(|close| &after[..close])
            .filter(|inner| looks_like_key(inner));
        match key {
            Some(inner) => {
                let start = pos + open;
                if start > text_start {
                    out.push(Segment::Text(&line[text_start..start]));
                }
                out.push(Segment::Key {
                    written: inner,
                    bytes: key_bytes(inner),
                });
                let end = start + inner.len() + 2;
                text_start = end;
                pos = end;
                rest = &line[end..];
            }
            None => {
                pos += open + 1;
                rest = &line[pos..];
            }
        }
    }
    if text_start < line.len() {
        out.push(Segment::Text(&line[text_start..]));
    }
    out
}

/// Whether a line is made only of keys (and spaces between them).
pub fn only_keys(line: &str) -> bool {
    let segments = segments(line);
    segments.iter().any(|s| matches!(s, Segment::Key { .. }))
        && segments
            .iter()
            .all(|s| !matches!(s, Segment::Text(t) if !t.trim().is_empty()))
}

/// The bytes a line sends: its text, its keys translated; the first unknown
/// key is an error. Spaces between keys of a key-only line are not sent.
fn input(line: &str, keys_only: bool) -> Result<Vec<u8>, KeyError> {
    let mut bytes = Vec::new();
    for segment in segments(line) {
        match segment {
            Segment::Text(t) if keys_only => debug_assert!(t.trim().is_empty()),
            Segment::Text(t) => bytes.extend_from_slice(t.as_bytes()),
            Segment::Key { bytes: Ok(b), .. } => bytes.extend(b),
            Segment::Key { bytes: Err(e), .. } => return Err(e),
        }
    }
    Ok(bytes)
}

/// The prompt as a regular expression anchored at the start of a line.
pub fn prompt_regex(prompt: &str) -> Result<Regex, PromptError> {
    Regex::new(&format!("^(?:{prompt})")).map_err(|e| {
        let text = e.to_string();
        let why = text.lines().last().unwrap_or_default();
        PromptError {
            prompt: prompt.to_string(),
            why: why.trim().trim_start_matches("error: ").to_string(),
        }
    })
}

/// Parses a session. Problems go to `problem` with their 1-based line in
/// the page; `None` when there is no `$ ` line to start a program.
pub fn parse(
    fence_line: usize,
    body: &str,
    prompt: Option<&str>,
    problem: &mut impl FnMut(usize, String),
) -> Option<Session> {
    let prompt_re = match prompt.map(prompt_regex) {
        Some(Ok(re)) => Some(re),
        Some(Err(e)) => {
            problem(fence_line, e.to_string());
            None
        }
        None => None,
    };
    let lines: Vec<&str> = body.lines().collect();
    if !lines.iter().any(|l| l.starts_with("$ ")) {
        problem(
            fence_line,
            "a terminal session (`pty`) needs a `$ ` line: the command that starts its program"
                .into(),
        );
        return None;
    }
    let Some(command) = lines[0].strip_prefix("$ ") else {
        problem(
            fence_line + 1,
            "a terminal session starts with a `$ ` line (the command that starts its program); this line comes before it".into(),
        );
        return None;
    };
    let mut session = Session {
        line: fence_line + 1,
        command: command.to_string(),
        prompt: prompt.map(str::to_string),
        lines: Vec::new(),
        exit: None,
    };
    for (i, &text) in lines.iter().enumerate().skip(1) {
        let line = fence_line + 1 + i;
        if i + 1 == lines.len() {
            if let Some(code) = exit_code(text) {
                session.exit = Some(code);
                continue;
            }
        }
        let mut located = |message| problem(line, message);
        if let Some(action) = action(text, prompt_re.as_ref(), session.line, &mut located) {
            session.lines.push(SessionLine {
                line,
                text: text.to_string(),
                action,
            });
        }
    }
    Some(session)
}

/// A last line `[N]`: the program's exit code.
fn exit_code(text: &str) -> Option<i32> {
    text.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// What a line of a session after its first does: type after the prompt,
/// send keys or await output; `None`, with a problem, when it cannot be
/// done. `start` is the line of the command that starts the program.
fn action(
    text: &str,
    prompt: Option<&Regex>,
    start: usize,
    problem: &mut impl FnMut(String),
) -> Option<SessionAction> {
    if let Some(m) = prompt.and_then(|re| re.find(text)) {
        let typed = &text[m.end()..];
        let mut bytes = input(typed, false)
            .map_err(|e| problem(e.to_string()))
            .ok()?;
        if !matches!(segments(typed).last(), Some(Segment::Key { .. })) {
            bytes.push(b'\r');
        }
        return Some(SessionAction::Prompt { input: bytes });
    }
    if only_keys(text) {
        let bytes = input(text, true).map_err(|e| problem(e.to_string())).ok()?;
        return Some(SessionAction::Keys { input: bytes });
    }
    if text.starts_with("$ ") {
        problem(format!(
            "a terminal session runs one program, started by its first `$ ` line (line {start}); give this command its own block, or if `$ ` is the program's prompt say so with `prompt=`"
        ));
        return None;
    }
    if let Err(e) = crate::matcher::capture_names(text) {
        problem(e.to_string());
    }
    Some(SessionAction::Expect)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(body: &str, prompt: Option<&str>) -> (Option<Session>, Vec<String>) {
        let mut problems = Vec::new();
        let session = parse(10, body, prompt, &mut |line, m| {
            problems.push(format!("{line}: {m}"))
        });
        (session, problems)
    }

    fn actions(session: &Session) -> Vec<SessionAction> {
        session.lines.iter().map(|l| l.action.clone()).collect()
    }

    #[test]
    fn keys() {
        let cases: &[(&str, &[u8])] = &[
            ("<Enter>", b"\r"),
            ("<Tab>", b"\t"),
            ("<Ctrl+d>", b"\x04"),
            ("<Ctrl+D>", b"\x04"),
            ("<Ctrl+a q>", b"\x01q"),
            ("<Ctrl+a Ctrl+a>", b"\x01\x01"),
            ("<Up> <Enter>", b"\x1b[A\r"),
            ("<Esc>", b"\x1b"),
        ];
        for (line, want) in cases {
            assert!(only_keys(line), "{line}");
            assert_eq!(input(line, true).unwrap(), *want, "{line}");
        }
    }

    #[test]
    fn text_that_is_not_a_key() {
        for line in [
            "cat <file >out",
            "Vec<T>",
            "a < b > c",
            "<>",
            "< Enter>",
            "Type <Ctrl+a q> to exit",
        ] {
            assert!(!only_keys(line), "{line}");
        }
        assert_eq!(segments("Vec<T>"), vec![Segment::Text("Vec<T>")]);
        assert_eq!(
            input("echo <b> <Tab>", false).unwrap(),
            b"echo <b> \t".to_vec()
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        for line in ["<Entr>", "<Ctrl+1>", "<Ctrl+ab>", "<Enter qq>", "<Alt+x>"] {
            let e = input(line, true).unwrap_err().to_string();
            assert!(e.contains("unknown key"), "{line}: {e}");
        }
    }

    #[test]
    fn a_session() {
        let body = "$ bash --norc -i\n...\nroot# echo hi\nhi\nroot# ls<Tab>\n<Ctrl+c>\nroot# <Ctrl+d>\n[3]\n";
        let (session, problems) = run(body, Some(r"root# "));
        assert!(problems.is_empty(), "{problems:?}");
        let session = session.unwrap();
        assert_eq!(
            (session.line, session.command.as_str()),
            (11, "bash --norc -i")
        );
        assert_eq!(session.exit, Some(3));
        assert_eq!(
            actions(&session),
            vec![
                SessionAction::Expect,
                SessionAction::Prompt {
                    input: b"echo hi\r".to_vec()
                },
                SessionAction::Expect,
                SessionAction::Prompt {
                    input: b"ls\t".to_vec()
                },
                SessionAction::Keys {
                    input: b"\x03".to_vec()
                },
                SessionAction::Prompt {
                    input: b"\x04".to_vec()
                },
            ]
        );
        assert_eq!(session.lines[1].line, 13);
    }

    #[test]
    fn a_prompt_that_is_a_dollar() {
        let (session, problems) = run("$ sh -i\n$ echo hi\nhi\n$ exit\n", Some(r"\$ "));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(session.unwrap().lines.len(), 3);
    }

    #[test]
    fn located_problems() {
        let cases: &[(&str, Option<&str>, &str)] = &[
            (
                "hello\n$ a\n",
                None,
                "11: a terminal session starts with a `$ ` line",
            ),
            (
                "<Enter>\n",
                None,
                "10: a terminal session (`pty`) needs a `$ ` line",
            ),
            ("", None, "10: a terminal session (`pty`) needs a `$ ` line"),
            ("$ a\n<Entr>\n", None, "12: unknown key `Entr`"),
            ("$ a\n# x<Alt+x>\n", Some("# "), "12: unknown key `Alt+x`"),
            (
                "$ a\n# x\n",
                Some("(#"),
                "10: invalid regular expression in `prompt=(#`: unclosed group",
            ),
            (
                "$ a\n$ b\n",
                Some("# "),
                "12: a terminal session runs one program",
            ),
            ("$ a\nx( (re)\n", None, "12: invalid regular expression"),
        ];
        for (body, prompt, want) in cases {
            let (_, problems) = run(body, *prompt);
            assert!(
                problems.iter().any(|p| p.starts_with(want)),
                "{body:?}: want {want:?}, got {problems:?}"
            );
        }
    }
}
