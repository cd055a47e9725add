//! Expected-output matching (DESIGN §4 and §8): plain lines match
//! themselves, `[..]` matches any text inside a line, a line `...` matches
//! any number of lines, a line ending in ` (re)` is a regular expression
//! for the whole line. Placeholders (`[IP]`, `[MAC]`, `[INT]`, `[HEX]`,
//! `[UUID]`, `[DATE]`, `[DURATION]`) match one value of their kind, and
//! `[KIND:name]` also captures it (a capture already set matches only its
//! value). A line ending in ` (literal)` is plain text, whatever it holds;
//! one ending in ` (escaped)` is plain text with `\t`, `\r`, `\e`, `\\` and
//! `\xNN` escapes, for control characters. Pure: no I/O.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

/// Captured values by name, in the order a recipe's steps set them.
pub type Captures = BTreeMap<String, String>;

/// The suffix that makes a line plain text.
pub const LITERAL: &str = " (literal)";
/// The suffix that makes a line plain text with escapes.
pub const ESCAPED: &str = " (escaped)";
/// The suffix that makes a line a regular expression for the whole line.
pub const REGEX: &str = " (re)";

/// Why an expected line is not a pattern. A message about the book: checks
/// locate it (`path:line:`), runs fail the step with it.
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    /// A ` (re)` line whose expression is not one.
    #[error("invalid regular expression `{re}`: {source}")]
    Regex { re: String, source: regex::Error },
    #[error(
        "unknown placeholder `{token}` (known: [..], {}; end the line with `{}` to match it as plain text)",
        known_placeholders(),
        LITERAL
    )]
    UnknownPlaceholder { token: String },
    #[error("malformed capture `{token}`: the name must be an environment variable name (letters, digits, `_`)")]
    MalformedCapture { token: String },
    /// A capture named like a variable the runner sets.
    #[error("capture `{token}` would replace the variable `{name}` the runner sets; choose another name")]
    ReservedCapture { token: String, name: String },
    /// A ` (escaped)` line with an escape it does not know.
    #[error(
        "malformed escape `{what}` in an `{}` line (use \\t, \\r, \\e, \\\\, \\xNN or \\u{{N}})",
        ESCAPED
    )]
    Escape { what: String },
    /// A line with placeholders whose expression does not compile.
    #[error("cannot compile `{line}`: {source}")]
    Compile { line: String, source: regex::Error },
}

fn known_placeholders() -> String {
    let known: Vec<String> = PLACEHOLDERS.iter().map(|(k, _)| format!("[{k}]")).collect();
    known.join(", ")
}

/// The placeholders and the text each one matches.
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    (
        "IP",
        r"(?:(?:\d{1,3}\.){3}\d{1,3}|(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?)",
    ),
    ("MAC", r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}"),
    ("INT", r"-?\d+"),
    ("HEX", r"(?:0x)?[0-9A-Fa-f]+"),
    (
        "UUID",
        r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}",
    ),
    (
        "DATE",
        concat!(
            // ISO 8601: 2025-12-02, 2025-12-02T10:11:12.5+01:00
            r"(?:\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?: ?(?:Z|[+-]\d{2}:?\d{2}))?)?",
            // date(1): Tue Dec  2 10:11:12 UTC 2025; RFC 2822: Tue, 02 Dec 2025 10:11:12 +0000
            r"|(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),? +(?:(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} +\d{2}:\d{2}:\d{2}(?: +[A-Z]{1,5}| +[+-]\d{4})? +\d{4}|\d{1,2} +(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{4} +\d{2}:\d{2}:\d{2}(?: +[+-]\d{4}| +[A-Z]{1,5})?)",
            // syslog: Dec  2 10:11:12
            r"|(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} +\d{2}:\d{2}:\d{2})",
        ),
    ),
    (
        "DURATION",
        r"(?:(?:\d+:)?\d{1,2}:\d{2}(?:\.\d+)?|\d+(?:\.\d+)?(?:ns|us|µs|ms|min|s|m|h|d)(?: ?\d+(?:\.\d+)?(?:ns|us|µs|ms|min|s|m|h|d))*)",
    ),
];

/// `[WORD]` or `[WORD:name]`: a placeholder, known or not.
static TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\[\.\.\]|\[([A-Z][A-Z0-9_]*)(?::([^\]\s]*))?\]").expect("valid token regex")
});

/// Environment variables the runner sets itself; a capture may not take
/// their names.
pub const RESERVED: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TERM",
    "ROOTFS",
    "RECIPE",
    "RECIPES_LIB",
];

/// Whether `name` can be a capture (an environment variable name).
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One expected line, compiled.
#[derive(Debug, Clone)]
pub enum Pattern {
    Exact(String),
    /// A regular expression for the whole line; group `cK` captures into
    /// `names[K]`.
    Regex {
        re: Regex,
        names: Vec<String>,
    },
    Any,
}

impl Pattern {
    /// Compiles a line; `bound` holds the captures already set, which match
    /// only their value. An invalid regular expression, an unknown
    /// placeholder or a malformed capture name is an error.
    pub fn parse(line: &str, bound: &Captures) -> Result<Pattern, PatternError> {
        if line == "..." {
            return Ok(Pattern::Any);
        }
        if let Some(text) = line.strip_suffix(LITERAL) {
            return Ok(Pattern::Exact(text.to_string()));
        }
        if let Some(text) = line.strip_suffix(ESCAPED) {
            return unescape(text).map(Pattern::Exact);
        }
        if let Some(re) = line.strip_suffix(REGEX) {
            return Regex::new(&format!("^(?:{re})$"))
                .map(|re| Pattern::Regex {
                    re,
                    names: Vec::new(),
                })
                .map_err(|source| PatternError::Regex {
                    re: re.to_string(),
                    source,
                });
        }
        if !TOKEN.is_match(line) {
            return Ok(Pattern::Exact(line.to_string()));
        }
        let mut re = String::from("^");
        let mut names = Vec::new();
        let mut last = 0;
        for token in TOKEN.captures_iter(line) {
            let whole = token.get(0).expect("group 0");
            re.push_str(&regex::escape(&line[last..whole.start()]));
            last = whole.end();
            let Some(kind) = token.get(1) else {
                re.push_str(".*?");
                continue;
            };
            let Some(&(_, class)) = PLACEHOLDERS.iter().find(|(k, _)| *k == kind.as_str()) else {
                return Err(PatternError::UnknownPlaceholder {
                    token: whole.as_str().to_string(),
                });
            };
            match token.get(2).map(|m| m.as_str()) {
                None => re.push_str(&format!("(?:{class})")),
                Some(name) => {
                    check_name(name, whole.as_str())?;
                    match bound.get(name) {
                        Some(value) => re.push_str(&regex::escape(value)),
                        None => {
                            re.push_str(&format!("(?P<c{}>{class})", names.len()));
                            names.push(name.to_string());
                        }
                    }
                }
            }
        }
        re.push_str(&regex::escape(&line[last..]));
        re.push('$');
        Regex::new(&re)
            .map(|re| Pattern::Regex { re, names })
            .map_err(|source| PatternError::Compile {
                line: line.to_string(),
                source,
            })
    }

    /// Whether this pattern matches one actual line (`...` matches any line).
    pub fn matches(&self, actual: &str) -> bool {
        match self {
            Pattern::Exact(s) => s == actual,
            Pattern::Regex { re, .. } => re.is_match(actual),
            Pattern::Any => true,
        }
    }

    /// What this pattern captures from a line it matches.
    fn capture(&self, actual: &str, into: &mut Vec<(String, String)>) {
        let Pattern::Regex { re, names } = self else {
            return;
        };
        if names.is_empty() {
            return;
        }
        if let Some(found) = re.captures(actual) {
            for (k, name) in names.iter().enumerate() {
                if let Some(m) = found.name(&format!("c{k}")) {
                    into.push((name.clone(), m.as_str().to_string()));
                }
            }
        }
    }
}

fn check_name(name: &str, token: &str) -> Result<(), PatternError> {
    if !valid_name(name) {
        return Err(PatternError::MalformedCapture {
            token: token.to_string(),
        });
    }
    if RESERVED.contains(&name) {
        return Err(PatternError::ReservedCapture {
            token: token.to_string(),
            name: name.to_string(),
        });
    }
    Ok(())
}

/// A line with at most this many placeholders and at most
/// [`SIMPLE_LINE`] bytes compiles for certain: its expression is escaped
/// text and known classes, far below the regex crate's size limit (twenty
/// `[DATE]`s, the largest class, still compile; fifty do not).
const SIMPLE_TOKENS: usize = 8;
const SIMPLE_LINE: usize = 4096;

/// The capture names a line sets (in order), or why it is not a pattern:
/// what [`Pattern::parse`] would say, found without compiling the line's
/// expression when it cannot fail to compile.
pub fn capture_names(line: &str) -> Result<Vec<String>, PatternError> {
    if line == "..." || line.ends_with(LITERAL) {
        return Ok(Vec::new());
    }
    if let Some(text) = line.strip_suffix(ESCAPED) {
        return unescape(text).map(|_| Vec::new());
    }
    if line.ends_with(REGEX) {
        return Pattern::parse(line, &Captures::new()).map(|_| Vec::new());
    }
    if !line.contains('[') {
        return Ok(Vec::new());
    }
    let mut names = Vec::new();
    let mut tokens = 0;
    for token in TOKEN.captures_iter(line) {
        tokens += 1;
        let Some(kind) = token.get(1) else {
            continue;
        };
        let whole = token.get(0).expect("group 0").as_str();
        if !PLACEHOLDERS.iter().any(|(k, _)| *k == kind.as_str()) {
            return Err(PatternError::UnknownPlaceholder {
                token: whole.to_string(),
            });
        }
        if let Some(name) = token.get(2) {
            check_name(name.as_str(), whole)?;
            names.push(name.as_str().to_string());
        }
    }
    if tokens > SIMPLE_TOKENS || line.len() > SIMPLE_LINE {
        Pattern::parse(line, &Captures::new())?;
    }
    Ok(names)
}

/// Compiles every expected line; the first invalid one is an error.
pub fn compile(expected: &[String], bound: &Captures) -> Result<Vec<Pattern>, PatternError> {
    expected.iter().map(|l| Pattern::parse(l, bound)).collect()
}

/// Which actual line each pattern consumes (`None` for `...`), when the
/// actual lines match the patterns as a whole.
fn align(patterns: &[Pattern], actual: &[&str]) -> Option<Vec<Option<usize>>> {
    // reach[i][j]: the first i patterns can consume the first j lines.
    let mut reach = vec![vec![false; actual.len() + 1]; patterns.len() + 1];
    reach[0][0] = true;
    for (i, pattern) in patterns.iter().enumerate() {
        for j in 0..=actual.len() {
            if !reach[i][j] {
                continue;
            }
            if matches!(pattern, Pattern::Any) {
                reach[i + 1][j..].iter_mut().for_each(|r| *r = true);
                break;
            }
            if j < actual.len() && pattern.matches(actual[j]) {
                reach[i + 1][j + 1] = true;
            }
        }
    }
    if !reach[patterns.len()][actual.len()] {
        return None;
    }
    // Walk back, preferring for `...` the fewest lines (leftmost end).
    let mut lines = vec![None; patterns.len()];
    let mut j = actual.len();
    for i in (0..patterns.len()).rev() {
        if matches!(patterns[i], Pattern::Any) {
            j = (0..=j).find(|&k| reach[i][k]).expect("a reachable start");
        } else {
            lines[i] = Some(j - 1);
            j -= 1;
        }
    }
    Some(lines)
}

/// Why actual lines do not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    Lines,
    /// One capture name took two values in one block.
    Capture {
        name: String,
        first: String,
        second: String,
    },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Lines => write!(f, "output differs from the expected output"),
            Mismatch::Capture {
                name,
                first,
                second,
            } => write!(
                f,
                "capture `{name}` matched `{first}`, then `{second}`: one name holds one value"
            ),
        }
    }
}

/// Matches the lines as a whole and returns what the patterns captured.
pub fn check(patterns: &[Pattern], actual: &[&str]) -> Result<Captures, Mismatch> {
    let lines = align(patterns, actual).ok_or(Mismatch::Lines)?;
    let mut found = Vec::new();
    for (pattern, line) in patterns.iter().zip(lines) {
        if let Some(j) = line {
            pattern.capture(actual[j], &mut found);
        }
    }
    let mut captures = Captures::new();
    for (name, value) in found {
        match captures.get(&name) {
            Some(first) if *first != value => {
                return Err(Mismatch::Capture {
                    name,
                    first: first.clone(),
                    second: value,
                })
            }
            _ => {
                captures.insert(name, value);
            }
        }
    }
    Ok(captures)
}

/// One line of [`normalise`]: an expected line kept, or an actual line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown<'a> {
    Expected(&'a str),
    Actual(&'a str),
}

impl<'a> Shown<'a> {
    pub fn text(self) -> &'a str {
        match self {
            Shown::Expected(s) | Shown::Actual(s) => s,
        }
    }
}

/// The actual lines rewritten so that lines a pattern accepts read as the
/// pattern: for a readable diff against the expected lines, and for
/// `--bless`, which keeps the patterns that still match.
pub fn normalise<'a>(
    expected: &'a [String],
    patterns: &[Pattern],
    actual: &[&'a str],
) -> Vec<Shown<'a>> {
    let mut out = Vec::new();
    let mut j = 0;
    let mut i = 0;
    while i < patterns.len() && j < actual.len() {
        if matches!(patterns[i], Pattern::Any) {
            out.push(Shown::Expected(expected[i].as_str()));
            // Swallow the lines up to where the next pattern matches; when
            // it matches nowhere, keep them visible in the diff.
            j = match patterns.get(i + 1) {
                None => actual.len(),
                Some(next) => actual[j..]
                    .iter()
                    .position(|line| next.matches(line))
                    .map_or(j, |k| j + k),
            };
            i += 1;
        } else if patterns[i].matches(actual[j]) {
            out.push(Shown::Expected(expected[i].as_str()));
            i += 1;
            j += 1;
        } else {
            out.push(Shown::Actual(actual[j]));
            j += 1;
        }
    }
    out.extend(actual[j..].iter().map(|l| Shown::Actual(l)));
    out
}

/// Where an output line will be read back when `--bless` writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// An `expect` block or a checked file.
    Block,
    /// The output of a transcript command (where `$ x` and `[N]` mean more).
    Transcript,
}

/// An output line written so that it reads back as itself: lines that
/// would read as syntax get ` (literal)`, lines with control characters
/// ` (escaped)`.
pub fn escape_line(line: &str, context: Context) -> String {
    if line
        .chars()
        .any(|c| c.is_control() && c != '\t' || c == '\u{7f}')
    {
        return format!("{}{ESCAPED}", escape(line));
    }
    let trimmed = line.trim_start();
    let syntax = line == "..."
        || line.ends_with(REGEX)
        || line.ends_with(LITERAL)
        || line.ends_with(ESCAPED)
        || TOKEN.is_match(line)
        || trimmed.starts_with("```")
        || trimmed.starts_with("~~~")
        || (context == Context::Transcript
            && (line.starts_with("$ ")
                || line
                    .strip_prefix('[')
                    .and_then(|l| l.strip_suffix(']'))
                    .is_some_and(|n| n.parse::<i64>().is_ok())));
    if syntax {
        format!("{line}{LITERAL}")
    } else {
        line.to_string()
    }
}

/// `\`, control characters and DEL written as escapes.
fn escape(line: &str) -> String {
    let mut out = String::new();
    for c in line.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The inverse of [`escape`].
fn unescape(text: &str) -> Result<String, PatternError> {
    let bad = |what: &str| PatternError::Escape {
        what: what.to_string(),
    };
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('e') => out.push('\u{1b}'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                let code = u32::from_str_radix(&hex, 16).map_err(|_| bad(&format!("\\x{hex}")))?;
                out.push(char::from_u32(code).ok_or_else(|| bad(&format!("\\x{hex}")))?);
            }
            Some('u') => {
                let rest: String = chars.by_ref().take_while(|c| *c != '}').collect();
                let hex = rest.strip_prefix('{').ok_or_else(|| bad("\\u"))?;
                let code =
                    u32::from_str_radix(hex, 16).map_err(|_| bad(&format!("\\u{rest}}}")))?;
                out.push(char::from_u32(code).ok_or_else(|| bad(&format!("\\u{rest}}}")))?);
            }
            Some(other) => return Err(bad(&format!("\\{other}"))),
            None => return Err(bad("\\")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|s| s.to_string()).collect()
    }

    fn run(expected: &[&str], actual: &[&str]) -> Result<Captures, Mismatch> {
        check(
            &compile(&strings(expected), &Captures::new()).unwrap(),
            actual,
        )
    }

    fn one(pattern: &str, actual: &str) -> bool {
        Pattern::parse(pattern, &Captures::new())
            .unwrap()
            .matches(actual)
    }

    #[test]
    fn lines() {
        let cases: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("abc", "abd", false),
            ("a[..]c", "abbbc", true),
            ("a[..]c", "ac", true),
            ("a[..]c", "abcd", false),
            ("[..]", "", true),
            ("a[..]a", "a", false),
            (
                "br0 [..] UP [..]",
                "br0              UP             aa:bb",
                true,
            ),
            ("br0 [..] UP [..]", "br0 DOWN", false),
            ("[0-9]+ (re)", "123", true),
            ("[0-9]+ (re)", "12a", false),
            ("x.y", "xzy", false),
            ("... (literal)", "...", true),
            ("... (literal)", "x", false),
            ("a [..] (literal)", "a [..]", true),
            ("a [..] (literal)", "a b", false),
            ("x (re) (literal)", "x (re)", true),
            ("[1] (literal)", "[1]", true),
            (
                "\\e[1mbold\\e[0m\\t\\\\ (escaped)",
                "\u{1b}[1mbold\u{1b}[0m\t\\",
                true,
            ),
        ];
        for (pattern, actual, want) in cases {
            assert_eq!(one(pattern, actual), *want, "{pattern:?} vs {actual:?}");
        }
    }

    #[test]
    fn placeholders() {
        let cases: &[(&str, &str, bool)] = &[
            ("inet [IP]/24", "inet 10.0.3.1/24", true),
            ("inet [IP]/24", "inet fe80::1/24", true),
            ("inet [IP]/24", "inet 2001:db8::42:1/24", true),
            ("inet [IP]/24", "inet host/24", false),
            (
                "link/ether [MAC] brd [..]",
                "link/ether 0a:1b:2c:3d:4e:5f brd ff:ff:ff:ff:ff:ff",
                true,
            ),
            ("link/ether [MAC]", "link/ether 0a:1b:2c:3d:4e", false),
            ("pid [INT]", "pid 4242", true),
            ("pid [INT]", "pid 42a", false),
            ("[HEX]", "deadBEEF", true),
            ("[HEX]", "0x1f", true),
            ("[HEX]", "xyz", false),
            ("id [UUID]", "id 123e4567-e89b-12d3-a456-426614174000", true),
            ("id [UUID]", "id 123e4567-e89b-12d3-a456", false),
            ("[DATE]", "2025-12-02", true),
            ("[DATE]", "2025-12-02T10:11:12.123456+01:00", true),
            ("[DATE]", "2025-12-02 10:11:12", true),
            ("[DATE]", "Tue Dec  2 10:11:12 UTC 2025", true),
            ("[DATE]", "Tue, 02 Dec 2025 10:11:12 +0000", true),
            (
                "[DATE] host kernel: x",
                "Dec  2 10:11:12 host kernel: x",
                true,
            ),
            ("[DATE]", "yesterday", false),
            ("took [DURATION]", "took 1.2s", true),
            ("took [DURATION]", "took 350ms", true),
            ("took [DURATION]", "took 00:01:02", true),
            ("took [DURATION]", "took 1min 2.5s", true),
            ("took [DURATION]", "took long", false),
            ("[IP:addr] is up", "10.0.3.7 is up", true),
        ];
        for (pattern, actual, want) in cases {
            assert_eq!(one(pattern, actual), *want, "{pattern:?} vs {actual:?}");
        }
    }

    #[test]
    fn bad_lines_are_errors() {
        let bad = |line: &str| {
            Pattern::parse(line, &Captures::new())
                .unwrap_err()
                .to_string()
        };
        assert!(bad("( (re)").contains("invalid regular expression"));
        assert!(bad("x [PID] y").contains("unknown placeholder `[PID]`"));
        assert!(bad("x [IP:1st]").contains("malformed capture"));
        assert!(bad("x [IP:PATH]").contains("replace the variable `PATH`"));
        assert!(bad("\\q (escaped)").contains("malformed escape"));
        assert_eq!(
            bad("\\q (escaped)"),
            "malformed escape `\\q` in an ` (escaped)` line (use \\t, \\r, \\e, \\\\, \\xNN or \\u{N})"
        );
        let unknown = bad("x [PID] y");
        assert!(
            unknown.starts_with("unknown placeholder `[PID]` (known: [..], [IP], [MAC], ")
                && unknown.ends_with("; end the line with ` (literal)` to match it as plain text)"),
            "{unknown}"
        );
        assert!(matches!(
            Pattern::parse("x [IP:PATH]", &Captures::new()),
            Err(PatternError::ReservedCapture { name, .. }) if name == "PATH"
        ));
        // Lower case, digits and the like are text.
        assert!(one("[ ok ] [info] [0] [a-z]", "[ ok ] [info] [0] [a-z]"));
    }

    #[test]
    fn captures_are_returned_and_bound_ones_match_their_value() {
        let got = run(
            &["mac [MAC:mac]", "...", "ip [IP:addr] pid [INT]"],
            &["mac 0a:00:00:00:00:01", "noise", "ip 10.0.3.2 pid 12"],
        )
        .unwrap();
        assert_eq!(got["mac"], "0a:00:00:00:00:01");
        assert_eq!(got["addr"], "10.0.3.2");
        assert_eq!(got.len(), 2);
        // Twice in one block: one value.
        assert!(run(&["[INT:n] [INT:n]"], &["3 3"]).is_ok());
        assert!(matches!(
            run(&["[INT:n]", "[INT:n]"], &["3", "4"]),
            Err(Mismatch::Capture { .. })
        ));
        // Set by an earlier step: only that value matches.
        let bound: Captures = [("addr".to_string(), "10.0.3.2".to_string())].into();
        let p = Pattern::parse("via [IP:addr]", &bound).unwrap();
        assert!(p.matches("via 10.0.3.2"));
        assert!(!p.matches("via 10.0.3.20"));
        assert_eq!(capture_names("[IP:a] [MAC] [INT:b]").unwrap(), ["a", "b"]);
    }

    #[test]
    fn capture_names_say_what_compiling_says() {
        let many_dates = "[DATE:d] ".repeat(50);
        let long = format!("{}[..]", "x".repeat(SIMPLE_LINE));
        let lines = [
            "plain",
            "...",
            "[..]",
            "a [IP:addr] b [INT] [INT:n] [INT:n]",
            "x [PID] [IP:1st]",
            "x [IP:1st] [PID]",
            "x [IP:PATH]",
            "[0-9]+ (re)",
            "( (re)",
            "\\q (escaped)",
            "\\t (escaped)",
            "[PID] (literal)",
            "[ ok ] [a-z] [0]",
            many_dates.as_str(),
            long.as_str(),
        ];
        for line in lines {
            let compiled = Pattern::parse(line, &Captures::new()).map(|p| match p {
                Pattern::Regex { names, .. } => names,
                _ => Vec::new(),
            });
            let found = capture_names(line);
            assert_eq!(
                found.as_ref().map_err(ToString::to_string),
                compiled.as_ref().map_err(ToString::to_string),
                "{line:?}"
            );
        }
        assert!(matches!(
            capture_names(&many_dates),
            Err(PatternError::Compile { .. })
        ));
    }

    #[test]
    fn ellipsis_spans_lines() {
        let ok = |e: &[&str], a: &[&str]| run(e, a).is_ok();
        assert!(ok(&["a", "...", "z"], &["a", "b", "c", "z"]));
        assert!(ok(&["a", "...", "z"], &["a", "z"]));
        assert!(ok(&["..."], &[]));
        assert!(ok(&["...", "z"], &["z", "z"]));
        assert!(!ok(&["a", "...", "z"], &["a", "b"]));
        assert!(!ok(&["a"], &["a", "b"]));
        assert!(!ok(&["a", "b"], &["a"]));
        assert!(ok(&[], &[]));
        assert!(ok(&["...", "[INT:n]", "..."], &["x", "5", "y"]));
    }

    #[test]
    fn normalise_keeps_matched_lines_as_patterns() {
        let expected = strings(&["a[..]", "...", "z"]);
        let patterns = compile(&expected, &Captures::new()).unwrap();
        let text = |actual: &[&str]| -> Vec<String> {
            normalise(&expected, &patterns, actual)
                .into_iter()
                .map(|s| s.text().to_string())
                .collect()
        };
        assert_eq!(text(&["abc", "q", "y"]), ["a[..]", "...", "q", "y"]);
        assert_eq!(text(&["abc", "q", "z", "w"]), ["a[..]", "...", "z", "w"]);
    }

    #[test]
    fn escaped_lines_read_back_as_themselves() {
        let lines = [
            "$ rm -rf /",
            "[1]",
            "...",
            "x (re)",
            "a [..] b",
            "[IP] and [FOO]",
            "```",
            "  ~~~~",
            "done (literal)",
            "\u{1b}[31mred\u{1b}[0m",
            "cr\rhere",
            "back\\slash \u{7}",
            "plain",
            "[ ok ] fine",
        ];
        for line in lines {
            for context in [Context::Block, Context::Transcript] {
                let written = escape_line(line, context);
                assert!(
                    one(&written, line),
                    "{line:?} written as {written:?} does not read back"
                );
                if context == Context::Transcript {
                    let reads_as_syntax = written.starts_with("$ ") || written == "[1]";
                    assert!(!reads_as_syntax || written.ends_with(LITERAL), "{written}");
                }
                assert!(!written.trim_start().starts_with("```") || written.ends_with(LITERAL));
            }
        }
        assert_eq!(escape_line("plain", Context::Transcript), "plain");
        assert_eq!(escape_line("[1]", Context::Block), "[1]");
    }
}
