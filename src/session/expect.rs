//! The session script against the screen, the way expect does it: each
//! line of the script is awaited, typed or sent in turn. Pure: the driver
//! feeds the screen and does the sending and the waiting.
//!
//! Expected lines are awaited in order: each is searched for among the
//! lines that came after the previous match, so lines the script does not
//! show (an echo, a banner) are let through; a line without its end yet
//! matches too (`login: `). A prompt line waits until the prompt shows on
//! the cursor's line, after some output that came since the last input (so
//! the prompt the input answered does not count twice); the line it is
//! typed on is then consumed (the script shows it as the prompt line
//! itself). A key line is sent at once. When the prompt comes back while an
//! expected line has not come, the session fails at once instead of waiting
//! for the timeout. Output after the script's last line is not checked.

use regex::Regex;

use super::screen::Screen;
use crate::matcher::Pattern;
use crate::model::{Session, SessionAction, SessionLine};

/// What the driver should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Write these bytes to the terminal.
    Send(Vec<u8>),
    /// Wait for more output.
    Wait,
    /// The script is over.
    Done,
}

/// Why a session failed at a line of its script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub line: usize,
    pub message: String,
}

pub struct Expecter<'a> {
    lines: &'a [SessionLine],
    /// The prompt, matched against the whole line the cursor is on.
    prompt: Option<Regex>,
    prompt_text: String,
    patterns: Vec<Option<Pattern>>,
    /// The script line being played.
    pos: usize,
    /// The first screen line not yet matched (past the finished lines when
    /// the cursor's line is consumed).
    next: usize,
    /// The screen's change count when input was last sent.
    sent_at: u64,
    /// The line the cursor was on when input was last sent.
    sent_line: Option<usize>,
}

impl<'a> Expecter<'a> {
    /// Compiles the prompt and the patterns (already checked by the parser;
    /// an error here is reported at its line).
    pub fn new(session: &'a Session) -> Result<Self, Mismatch> {
        let prompt = match &session.prompt {
            Some(p) => Some(Regex::new(&format!("^(?:{p})$")).map_err(|e| Mismatch {
                line: session.line,
                message: format!("invalid prompt `{p}`: {e}"),
            })?),
            None => None,
        };
        let patterns = session
            .lines
            .iter()
            .map(|l| match l.action {
                SessionAction::Expect => Pattern::parse(&l.text, &crate::matcher::Captures::new())
                    .map(Some)
                    .map_err(|e| Mismatch {
                        line: l.line,
                        message: e.to_string(),
                    }),
                _ => Ok(None),
            })
            .collect::<Result<_, _>>()?;
        Ok(Expecter {
            lines: &session.lines,
            prompt,
            prompt_text: session.prompt.clone().unwrap_or_default(),
            patterns,
            pos: 0,
            next: 0,
            sent_at: 0,
            sent_line: None,
        })
    }

    /// The script line being played (`None` once done).
    pub fn waiting_for(&self) -> Option<&'a SessionLine> {
        self.lines.get(self.pos)
    }

    /// How far the script has gone (grows with each line played).
    pub fn position(&self) -> usize {
        self.pos
    }

    /// What a wait at the current line is waiting for, for messages.
    pub fn describe(&self) -> String {
        match self.waiting_for() {
            None => "the end of the program".into(),
            Some(l) => match l.action {
                SessionAction::Prompt { .. } => format!(
                    "the prompt `{}` (to type line {}: `{}`)",
                    self.prompt_text, l.line, l.text
                ),
                _ => format!("line {}: `{}`", l.line, l.text),
            },
        }
    }

    /// Whether the prompt shows anew: output came since the last input, and
    /// on a line below the one that input was typed on (a program that
    /// redraws its prompt as it reads the input has not answered it).
    fn prompted(&self, screen: &Screen) -> bool {
        screen.changes() > self.sent_at
            && self.sent_line.is_none_or(|l| screen.lines().len() > l)
            && self
                .prompt
                .as_ref()
                .is_some_and(|re| re.is_match(&screen.current()))
    }

    fn send(&mut self, input: &[u8], screen: &Screen) -> Next {
        self.pos += 1;
        self.sent_at = screen.changes();
        self.sent_line = Some(screen.lines().len());
        Next::Send(input.to_vec())
    }

    /// The next thing to do, given what the screen shows.
    pub fn next(&mut self, screen: &Screen) -> Result<Next, Mismatch> {
        let lines = screen.lines();
        loop {
            let Some(line) = self.lines.get(self.pos) else {
                return Ok(Next::Done);
            };
            match &line.action {
                SessionAction::Expect => {
                    let pattern = self.patterns[self.pos].as_ref().expect("compiled");
                    if matches!(pattern, Pattern::Any) {
                        self.pos += 1;
                        continue;
                    }
                    let start = self.next.min(lines.len());
                    if let Some(i) = lines[start..].iter().position(|l| pattern.matches(l)) {
                        self.next = start + i + 1;
                        self.pos += 1;
                        continue;
                    }
                    self.next = self.next.max(lines.len());
                    let current = screen.current();
                    if self.next == lines.len() && !current.is_empty() && pattern.matches(&current)
                    {
                        self.next += 1;
                        self.pos += 1;
                        continue;
                    }
                    if self.prompted(screen) {
                        return Err(Mismatch {
                            line: line.line,
                            message: format!(
                                "the program came back to its prompt without printing line {}: `{}`",
                                line.line, line.text
                            ),
                        });
                    }
                    return Ok(Next::Wait);
                }
                SessionAction::Prompt { input } => {
                    if self.prompted(screen) {
                        // The line typed on is the script's prompt line.
                        self.next = lines.len() + 1;
                        return Ok(self.send(input, screen));
                    }
                    return Ok(Next::Wait);
                }
                SessionAction::Keys { input } => return Ok(self.send(input, screen)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::session::parse;
    use crate::session::screen::Screen;

    fn session(body: &str, prompt: Option<&str>) -> Session {
        parse(0, body, prompt, &mut |l, m| panic!("{l}: {m}")).unwrap()
    }

    /// Plays a script against output chunks, each given when the script
    /// waits; returns what was sent, and the end.
    fn play(s: &Session, chunks: &[&str]) -> (Vec<String>, Result<Next, Mismatch>) {
        let mut e = Expecter::new(s).unwrap();
        let mut screen = Screen::new();
        let mut sent = Vec::new();
        let mut chunks = chunks.iter();
        loop {
            match e.next(&screen) {
                Ok(Next::Send(b)) => sent.push(String::from_utf8(b).unwrap()),
                Ok(Next::Wait) => match chunks.next() {
                    Some(c) => screen.feed(c.as_bytes()),
                    None => return (sent, Ok(Next::Wait)),
                },
                other => return (sent, other),
            }
        }
    }

    #[test]
    fn a_shell() {
        let s = session("$ sh -i\nroot# echo hi\nhi\nroot# exit\n", Some(r"root# "));
        let (sent, end) = play(&s, &["roo", "t# ", "echo hi\r\n", "hi\r\nroot# "]);
        assert_eq!(sent, ["echo hi\r", "exit\r"]);
        assert_eq!(end, Ok(Next::Done));
    }

    #[test]
    fn a_wrong_line_fails_when_the_prompt_comes_back() {
        let s = session("$ sh -i\n# echo hi\nhi\n# exit\n", Some("# "));
        let (_, end) = play(&s, &["# ", "echo hi\r\nho\r\n# "]);
        let m = end.unwrap_err();
        assert_eq!(m.line, 3);
        assert!(
            m.message
                .contains("came back to its prompt without printing line 3: `hi`"),
            "{}",
            m.message
        );
    }

    #[test]
    fn the_echo_of_the_input_is_not_output() {
        // `[..]hi` would match the echo `# echo hi`: the prompt line eats it.
        let s = session("$ sh -i\n# echo hi\n[..]hi\n# exit\n", Some("# "));
        let (sent, end) = play(&s, &["# ", "echo hi\r\n", "hi\r\n# "]);
        assert_eq!(sent, ["echo hi\r", "exit\r"]);
        assert_eq!(end, Ok(Next::Done));
        let (_, end) = play(&s, &["# ", "echo hi\r\n# "]);
        assert!(end.is_err());
    }

    #[test]
    fn the_prompt_answered_does_not_count_twice() {
        let s = session("$ sh -i\n# a\n# b\n", Some("# "));
        // Escapes that only set modes do not make the old prompt new.
        let (sent, end) = play(&s, &["# ", "\x1b[?2004l\r", "a\r\n# "]);
        assert_eq!(sent, ["a\r", "b\r"]);
        assert_eq!(end, Ok(Next::Done));
        let (sent, end) = play(&s, &["# ", "\x1b[?2004l\r"]);
        assert_eq!(sent, ["a\r"]);
        assert_eq!(end, Ok(Next::Wait));
    }

    #[test]
    fn a_prompt_redrawn_on_its_line_is_not_an_answer() {
        let s = session("$ sh -i\n# a\nA\n# b\n", Some("# "));
        let (sent, end) = play(&s, &["# ", "\r\x1b[K# ", "a\r\nA\r\n# "]);
        assert_eq!(sent, ["a\r", "b\r"]);
        assert_eq!(end, Ok(Next::Done));
    }

    #[test]
    fn dots_skip_lines_and_patterns_match() {
        let s = session(
            "$ login\n...\nweb1 login: root\nLast login: [..]\n...\nroot@web1:~# <Ctrl+d>\n",
            Some(r"(web1 login:|\S+@web1:\S+#) "),
        );
        let (sent, end) = play(
            &s,
            &[
                "\r\nDebian GNU/Linux 12 web1 tty2\r\n\r\nweb1 login: ",
                "root\r\nLast login: today\r\nLinux web1\r\n\r\nroot@web1:~# ",
            ],
        );
        assert_eq!(sent, ["root\r", "\u{4}"]);
        assert_eq!(end, Ok(Next::Done));
    }

    #[test]
    fn keys_are_sent_at_once_and_partial_lines_match() {
        let s = session(
            "$ lxc-console\nType <Ctrl+a q> to exit\n<Enter>\nlogin:\n",
            None,
        );
        let (sent, end) = play(&s, &["\r\nType <Ctrl+a q> to exit\r\n", "\r\nlogin:"]);
        assert_eq!(sent, ["\r"]);
        assert_eq!(end, Ok(Next::Done));
    }

    #[test]
    fn waits_for_the_prompt() {
        let s = session("$ sh -i\n# true\n", Some("# "));
        let (sent, end) = play(&s, &["#"]);
        assert!(sent.is_empty());
        assert_eq!(end, Ok(Next::Wait));
        let e = Expecter::new(&s).unwrap();
        assert_eq!(e.describe(), "the prompt `# ` (to type line 2: `# true`)");
        assert_eq!(e.waiting_for().unwrap().line, 2);
    }
}
