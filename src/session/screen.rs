//! What a terminal shows, line by line: the bytes a program writes to its
//! pseudo-terminal become finished lines and the line the cursor is on.
//! Enough of a terminal for matching: carriage return, backspace, tabs and
//! erase-line are honoured; other escape sequences (colours, cursor moves,
//! titles, bracketed paste) are dropped.

/// Where the escape-sequence parser is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    /// After ESC.
    Start,
    /// In `ESC [ ...`, with the parameter bytes so far.
    Csi,
    /// In `ESC ] ...` (ends with BEL or `ESC \`).
    Osc,
    /// In an OSC, just after ESC.
    OscEsc,
    /// After `ESC (` and the like: one more byte.
    Charset,
}

/// The lines of a terminal, as a person reads them.
#[derive(Debug, Clone)]
pub struct Screen {
    lines: Vec<String>,
    current: Vec<char>,
    cursor: usize,
    escape: Escape,
    csi: String,
    /// The start of a UTF-8 sequence cut by a read.
    pending: Vec<u8>,
    /// How many visible changes were made (characters, line ends, erasures).
    changes: u64,
}

impl Default for Screen {
    fn default() -> Self {
        Screen::new()
    }
}

impl Screen {
    pub fn new() -> Self {
        Screen {
            lines: Vec::new(),
            current: Vec::new(),
            cursor: 0,
            escape: Escape::None,
            csi: String::new(),
            pending: Vec::new(),
            changes: 0,
        }
    }

    /// Grows with each visible change (cursor moves and escapes that only
    /// set modes do not count).
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// The finished lines (trailing spaces dropped, as a reader sees them).
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The line the cursor is on, as written so far.
    pub fn current(&self) -> String {
        self.current.iter().collect()
    }

    /// Everything on screen: the finished lines, then the current one.
    pub fn text(&self) -> String {
        let mut text = String::new();
        for line in &self.lines {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(&self.current());
        text
    }

    /// Takes what the program wrote.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        let pending = std::mem::take(&mut self.pending);
        let mut rest = &pending[..];
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    text.chars().for_each(|c| self.put(c));
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    std::str::from_utf8(good)
                        .unwrap_or_default()
                        .chars()
                        .for_each(|c| self.put(c));
                    match e.error_len() {
                        Some(n) => {
                            self.put(char::REPLACEMENT_CHARACTER);
                            rest = &bad[n..];
                        }
                        None => {
                            self.pending = bad.to_vec();
                            break;
                        }
                    }
                }
            }
        }
    }

    fn put(&mut self, c: char) {
        match self.escape {
            Escape::Start => {
                self.escape = match c {
                    '[' => {
                        self.csi.clear();
                        Escape::Csi
                    }
                    ']' => Escape::Osc,
                    '(' | ')' | '*' | '+' | '#' | '%' => Escape::Charset,
                    _ => Escape::None,
                };
                return;
            }
            Escape::Csi => {
                if ('\u{40}'..='\u{7e}').contains(&c) {
                    self.escape = Escape::None;
                    self.csi_final(c);
                } else {
                    self.csi.push(c);
                }
                return;
            }
            Escape::Osc => {
                self.escape = match c {
                    '\u{7}' => Escape::None,
                    '\u{1b}' => Escape::OscEsc,
                    _ => Escape::Osc,
                };
                return;
            }
            Escape::OscEsc => {
                self.escape = if c == '\\' { Escape::None } else { Escape::Osc };
                return;
            }
            Escape::Charset => {
                self.escape = Escape::None;
                return;
            }
            Escape::None => {}
        }
        match c {
            '\u{1b}' => self.escape = Escape::Start,
            '\n' => {
                self.changes += 1;
                let line: String = self.current.drain(..).collect();
                self.lines.push(line.trim_end().to_string());
                self.cursor = 0;
            }
            '\r' => self.cursor = 0,
            '\u{8}' => self.cursor = self.cursor.saturating_sub(1),
            '\t' => {
                let to = (self.cursor / 8 + 1) * 8;
                while self.cursor < to {
                    self.write(' ');
                }
            }
            c if c.is_control() => {}
            c => self.write(c),
        }
    }

    fn write(&mut self, c: char) {
        self.changes += 1;
        if self.cursor < self.current.len() {
            self.current[self.cursor] = c;
        } else {
            self.current.resize(self.cursor, ' ');
            self.current.push(c);
        }
        self.cursor += 1;
    }

    fn csi_final(&mut self, c: char) {
        let n = self.csi.trim_start_matches('?').parse::<usize>().ok();
        match c {
            // Erase in line: to its end (0), to the cursor (1), all (2).
            'K' => {
                self.changes += 1;
                match n.unwrap_or(0) {
                    0 => self.current.truncate(self.cursor),
                    1 => {
                        let end = self.cursor.min(self.current.len());
                        self.current[..end].fill(' ')
                    }
                    _ => self.current.clear(),
                }
            }
            'C' => self.cursor += n.unwrap_or(1).max(1),
            'D' => self.cursor = self.cursor.saturating_sub(n.unwrap_or(1).max(1)),
            'G' => self.cursor = n.unwrap_or(1).max(1) - 1,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen(chunks: &[&[u8]]) -> Screen {
        let mut s = Screen::new();
        for chunk in chunks {
            s.feed(chunk);
        }
        s
    }

    #[test]
    fn lines_and_the_current_line() {
        let s = screen(&[b"hello\r\nwor", b"ld  \r\n# "]);
        assert_eq!(s.lines(), ["hello", "world"]);
        assert_eq!(s.current(), "# ");
        assert_eq!(s.text(), "hello\nworld\n# ");
    }

    #[test]
    fn escapes_are_dropped() {
        let s =
            screen(&[b"\x1b[?2004h\x1b]0;title\x07\x1b[1;31mred\x1b[0m\r\n\x1b(Bok\x1b]2;t\x1b\\"]);
        assert_eq!(s.lines(), ["red"]);
        assert_eq!(s.current(), "ok");
    }

    #[test]
    fn carriage_return_backspace_and_erase() {
        let s = screen(&[
            b"abcdef\rXY\r\n",
            b"abc\x08\x08Z\r\n",
            b"long line\r\x1b[Kshort",
        ]);
        assert_eq!(s.lines(), ["XYcdef", "aZc"]);
        assert_eq!(s.current(), "short");
    }

    #[test]
    fn utf8_cut_by_reads() {
        let bytes = "été €".as_bytes();
        let s = screen(&[&bytes[..1], &bytes[1..6], &bytes[6..], b"\xff\n"]);
        assert_eq!(s.lines(), ["été €\u{fffd}"]);
    }

    #[test]
    fn tabs() {
        let s = screen(&[b"a\tb\n"]);
        assert_eq!(s.lines(), ["a       b"]);
    }
}
