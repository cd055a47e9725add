//! What a terminal shows, line by line: the bytes a program writes to its
//! pseudo-terminal become finished lines and the line the cursor is on.
//! Enough of a terminal for matching: carriage return, backspace, tabs and
//! erase-line are honoured; other escape sequences (colours, cursor moves,
//! titles, bracketed paste, DCS and APC strings, C1 controls) are dropped.
//! The escape sequences are parsed by `vte` (Alacritty's parser), which
//! also joins UTF-8 sequences cut by reads.

/// The lines of a terminal, as a person reads them.
#[derive(Default)]
pub struct Screen {
    parser: vte::Parser,
    lines: Lines,
    /// The start of a UTF-8 sequence cut by a read, held back: vte 0.14
    /// loses the character after a sequence it completes across two calls
    /// (alacritty/vte#159), so it only ever sees whole sequences.
    cut: Vec<u8>,
}

/// What the parser's actions write to.
#[derive(Debug, Default)]
struct Lines {
    done: Vec<String>,
    current: Vec<char>,
    cursor: usize,
    /// How many visible changes were made (characters, line ends, erasures).
    changes: u64,
}

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Screen")
            .field("lines", &self.lines)
            .finish()
    }
}

impl Screen {
    pub fn new() -> Self {
        Screen::default()
    }

    /// Grows with each visible change (cursor moves and escapes that only
    /// set modes do not count).
    pub fn changes(&self) -> u64 {
        self.lines.changes
    }

    /// The finished lines (trailing spaces dropped, as a reader sees them).
    pub fn lines(&self) -> &[String] {
        &self.lines.done
    }

    /// The line the cursor is on, as written so far.
    pub fn current(&self) -> String {
        self.lines.current.iter().collect()
    }

    /// Everything on screen: the finished lines, then the current one.
    pub fn text(&self) -> String {
        let mut text = String::new();
        for line in &self.lines.done {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(&self.current());
        text
    }

    /// Takes what the program wrote.
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut whole = std::mem::take(&mut self.cut);
        whole.extend_from_slice(bytes);
        let end = whole.len() - cut_sequence(&whole);
        self.cut = whole.split_off(end);
        self.parser.advance(&mut self.lines, &whole);
    }
}

/// How many bytes at the end of `bytes` start a UTF-8 sequence that the
/// next read completes (0 when it ends on a whole one, or on invalid bytes,
/// which the parser replaces).
fn cut_sequence(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let byte = bytes[bytes.len() - back];
        let length = match byte {
            0x80..=0xbf => continue,
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => return 0,
        };
        return if length > back { back } else { 0 };
    }
    0
}

impl Lines {
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
}

impl vte::Perform for Lines {
    fn print(&mut self, c: char) {
        // C1 controls written as UTF-8 arrive here: they show nothing.
        if !c.is_control() {
            self.write(c);
        }
    }

    fn execute(&mut self, byte: u8) {
        match byte {
            b'\n' => {
                self.changes += 1;
                let line: String = self.current.drain(..).collect();
                self.done.push(line.trim_end().to_string());
                self.cursor = 0;
            }
            b'\r' => self.cursor = 0,
            0x08 => self.cursor = self.cursor.saturating_sub(1),
            b'\t' => {
                let to = (self.cursor / 8 + 1) * 8;
                while self.cursor < to {
                    self.write(' ');
                }
            }
            _ => {}
        }
    }

    fn csi_dispatch(
        &mut self,
        params: &vte::Params,
        _intermediates: &[u8],
        _ignore: bool,
        action: char,
    ) {
        // The first parameter; 0 when left out (each default below).
        let n = params
            .iter()
            .next()
            .and_then(|p| p.first())
            .map_or(0, |n| usize::from(*n));
        match action {
            // Erase in line: to its end (0), to the cursor (1), all (2).
            'K' => {
                self.changes += 1;
                match n {
                    0 => self.current.truncate(self.cursor),
                    1 => {
                        let end = self.cursor.min(self.current.len());
                        self.current[..end].fill(' ')
                    }
                    _ => self.current.clear(),
                }
            }
            'C' => self.cursor += n.max(1),
            'D' => self.cursor = self.cursor.saturating_sub(n.max(1)),
            'G' => self.cursor = n.max(1) - 1,
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

    /// One table of escape sequences: what each leaves on screen, fed at
    /// once and byte by byte (a read may cut a sequence anywhere).
    #[test]
    fn escape_sequences() {
        let cases: &[(&[u8], &[&str], &str)] = &[
            // SGR colours, private modes, OSC titles ended by BEL or ST.
            (b"\x1b[1;31mred\x1b[0m", &[], "red"),
            (b"\x1b[?2004hon\x1b[?2004l", &[], "on"),
            (b"\x1b]0;title\x07a\x1b]2;t\x1b\\b", &[], "ab"),
            // Charset designations and other two-byte escapes.
            (b"\x1b(Bx\x1b)0y\x1b=z\x1b>", &[], "xyz"),
            // DCS and APC strings, and raw C1 bytes, show nothing.
            (b"a\x1bPq#0;1;2\x1b\\b", &[], "ab"),
            (b"a\x1b_payload\x1b\\b", &[], "ab"),
            (b"a\xc2\x9bb", &[], "ab"),
            // Erase in line: to the end, to the cursor, all.
            (b"abcdef\r\x1b[Kx", &[], "x"),
            (b"abcdef\x1b[3D\x1b[1Kx", &[], "   xef"),
            (b"abcdef\x1b[2Kx", &[], "      x"),
            (b"abc\r\x1b[0Kxy", &[], "xy"),
            // Cursor moves: forward, back, to a column (1-based).
            (b"ab\x1b[3Cc", &[], "ab   c"),
            (b"abcd\x1b[2DX", &[], "abXd"),
            (b"abcd\x1b[DX", &[], "abcX"),
            (b"abcd\x1b[2GX\x1b[GY", &[], "YXcd"),
            (b"abcd\x1b[CX", &[], "abcd X"),
            // Lines end with LF only; CR and backspace move the cursor.
            (b"one\r\ntwo\n", &["one", "two"], ""),
            (b"ab\x08\x08c", &[], "cb"),
            // UTF-8 cut anywhere, and a sequence cut by an escape.
            ("ét─x\u{301}y".as_bytes(), &[], "ét─x\u{301}y"),
            (b"a\xe2\x94\x1b[mb", &[], "a\u{fffd}b"),
            // Other C0 controls show nothing.
            (b"a\x07\x0b\x0c\x00b", &[], "ab"),
        ];
        for (bytes, lines, current) in cases {
            let whole = screen(&[bytes]);
            let pieces: Vec<&[u8]> = bytes.chunks(1).collect();
            let split = screen(&pieces);
            for s in [whole, split] {
                assert_eq!(s.lines(), *lines, "{:?}", String::from_utf8_lossy(bytes));
                assert_eq!(
                    s.current(),
                    *current,
                    "{:?}",
                    String::from_utf8_lossy(bytes)
                );
            }
        }
    }

    #[test]
    fn only_visible_changes_count() {
        let mut s = Screen::new();
        s.feed(b"\x1b[1;31m\x1b]0;t\x07\x1b[3C");
        assert_eq!(s.changes(), 0);
        s.feed(b"ab\n\x1b[K");
        assert_eq!(s.changes(), 4);
    }
}
