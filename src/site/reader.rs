//! Expected output as a reader should see it. The book's expected lines
//! carry matching syntax (DESIGN §4): `[..]` for any text, a ` (re)` suffix
//! for a regular expression, ` (literal)` and ` (escaped)` for plain text.
//! On the site, `[..]` and what a pattern leaves open read as `…`, and the
//! suffixes go. Placeholders name what varies the way man pages do:
//! `[INT]` reads `<n>`, `[IP:web1]` reads `<ip web1>`. Pure.

use std::sync::LazyLock;

use regex::{Captures, Regex};

use crate::matcher::{ESCAPED, LITERAL, PLACEHOLDERS, REGEX};
const ELLIPSIS: &str = "…";

/// A block's body as the site shows it: every expected line through
/// [`line`]; in a transcript (`console`), the `$ ` command lines stay.
/// `prefix` is the indentation every line of the block carries.
pub fn block(text: &str, prefix: &str, transcript: bool) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let last = lines.len().saturating_sub(1);
    let mut out = Vec::with_capacity(lines.len());
    for (i, raw) in lines.iter().enumerate() {
        // The fences, and lines that do not carry the block's indentation.
        let Some(body) = raw.strip_prefix(prefix).filter(|_| i > 0 && i < last) else {
            out.push(raw.to_string());
            continue;
        };
        let command = transcript && body.starts_with("$ ") && !body.ends_with(LITERAL);
        if command || body.trim_start().starts_with("```") || body.trim_start().starts_with("~~~") {
            out.push(raw.to_string());
        } else {
            out.push(format!("{prefix}{}", line(body)));
        }
    }
    out.join("\n")
}

/// One expected line as the site shows it.
pub fn line(line: &str) -> String {
    if let Some(text) = line.strip_suffix(LITERAL) {
        return text.to_string();
    }
    if let Some(text) = line.strip_suffix(ESCAPED) {
        return text.to_string();
    }
    if let Some(re) = line.strip_suffix(REGEX) {
        return regex(re);
    }
    placeholders(&line.replace("[..]", ELLIPSIS))
}

/// Placeholders written as man pages write what varies: `[INT]` as `<n>`,
/// `[IP:web1]` as `<ip web1>`, `[MAC]` as `<mac>`. A bracketed text that
/// is no placeholder (`[1]`, `[::1]`) stays as it is.
fn placeholders(line: &str) -> String {
    static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\[([A-Z]+)(?::([A-Za-z_][A-Za-z0-9_-]*))?\]").expect("a valid pattern")
    });
    PLACEHOLDER
        .replace_all(line, |caps: &Captures<'_>| {
            let kind = &caps[1];
            if !PLACEHOLDERS.iter().any(|(known, _)| *known == kind) {
                return caps[0].to_string();
            }
            let word = if kind == "INT" {
                "n".to_string()
            } else {
                kind.to_lowercase()
            };
            match caps.get(2) {
                Some(name) => format!("<{word} {}>", name.as_str()),
                None => format!("<{word}>"),
            }
        })
        .into_owned()
}

/// A regular expression as the text it stands for: classes, wildcards and
/// quantified atoms become `…`, `\s` a space, escapes their character, and
/// an alternation its first branch.
pub fn regex(re: &str) -> String {
    let chars: Vec<char> = re.chars().collect();
    let mut out = String::new();
    render(&chars, &mut out);
    let mut text = out.trim_start_matches('^').to_string();
    if text.ends_with('$') && !text.ends_with("\\$") {
        text.pop();
    }
    for run in ["….…", "……"] {
        while text.contains(run) {
            text = text.replace(run, ELLIPSIS);
        }
    }
    text
}

fn render(chars: &[char], out: &mut String) {
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '\\' if i < chars.len() => {
                let e = chars[i];
                i += 1;
                match e {
                    'd' | 'w' | 'D' | 'W' | 'S' => out.push_str(ELLIPSIS),
                    's' => out.push(' '),
                    other => out.push(other),
                }
                i = skip_quantifier(chars, i);
            }
            '[' => {
                i = class_end(chars, i);
                out.push_str(ELLIPSIS);
                i = skip_quantifier(chars, i);
            }
            '.' => {
                let after = skip_quantifier(chars, i);
                let word = |c: Option<&char>| c.is_some_and(|c| c.is_alphanumeric());
                // `checkroot.sh`: an unescaped dot between letters is meant
                // as one.
                if after == i && word(chars.get(i.wrapping_sub(2))) && word(chars.get(i)) {
                    out.push('.');
                } else {
                    out.push_str(ELLIPSIS);
                }
                i = after;
            }
            '(' => {
                let end = group_end(chars, i);
                let mut inner = &chars[i..end.saturating_sub(1).max(i)];
                if inner.starts_with(&['?', ':']) {
                    inner = &inner[2..];
                }
                let first = first_branch(inner);
                let mut sub = String::new();
                render(first, &mut sub);
                i = skip_quantifier(chars, end);
                if i > end {
                    out.push_str(ELLIPSIS);
                } else {
                    out.push_str(&sub);
                }
            }
            '+' | '*' | '?' => {}
            '{' => i = skip_quantifier(chars, i - 1),
            other => out.push(other),
        }
    }
}

/// The index after the `]` closing a class whose body starts at `i`.
fn class_end(chars: &[char], mut i: usize) -> usize {
    if chars.get(i) == Some(&'^') {
        i += 1;
    }
    if chars.get(i) == Some(&']') {
        i += 1;
    }
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            ']' => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

/// The index after the `)` closing a group whose body starts at `i`.
fn group_end(chars: &[char], mut i: usize) -> usize {
    let mut depth = 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '[' => {
                i = class_end(chars, i + 1);
                continue;
            }
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    chars.len()
}

/// A group's body up to its first top-level `|`.
fn first_branch(body: &[char]) -> &[char] {
    let mut depth = 0;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            '\\' => i += 1,
            '[' => {
                i = class_end(body, i + 1);
                continue;
            }
            '(' => depth += 1,
            ')' => depth -= 1,
            '|' if depth == 0 => return &body[..i],
            _ => {}
        }
        i += 1;
    }
    body
}

/// The index after a quantifier at `i` (`+`, `*`, `?`, `{n,m}`, lazy or not).
fn skip_quantifier(chars: &[char], mut i: usize) -> usize {
    match chars.get(i) {
        Some('+' | '*' | '?') => i += 1,
        Some('{') => {
            let close = chars[i..].iter().position(|&c| c == '}');
            match close {
                Some(n)
                    if chars[i + 1..i + n]
                        .iter()
                        .all(|c| c.is_ascii_digit() || *c == ',') =>
                {
                    i += n + 1
                }
                _ => return i,
            }
        }
        _ => return i,
    }
    if chars.get(i) == Some(&'?') {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_lines_read_as_text() {
        let table = [
            ("br0 [..] UP [..]", "br0 … UP …"),
            ("[::ffff:192.168.50.1] (literal)", "[::ffff:192.168.50.1]"),
            ("$ echo (literal)", "$ echo"),
            ("MemTotal:[INT] kB", "MemTotal:<n> kB"),
            (
                "[INT] [MAC] 10.0.3.[INT] * [..]",
                "<n> <mac> 10.0.3.<n> * …",
            ),
            ("Address: [IP:web1]", "Address: <ip web1>"),
            (
                "run-r[HEX].scope [1] [::1] [NOPE]",
                "run-r<hex>.scope [1] [::1] [NOPE]",
            ),
            ("[INT:n] [..] (literal)", "[INT:n] [..]"),
            ("...", "..."),
            ("plain", "plain"),
            ("K[0-9]+brightness (re)", "K…brightness"),
            ("PID:            [0-9]+ (re)", "PID:            …"),
            (
                r"(?:mount: |\x00)/sys/fs/pstore: permission denied\. (re)",
                "mount: /sys/fs/pstore: permission denied.",
            ),
            ("[0-9a-f]{32} (re)", "…"),
            (
                "checkroot.sh: 0[0-9], checkfs.sh: 0[0-9] (re)",
                "checkroot.sh: 0…, checkfs.sh: 0…",
            ),
            (
                "ii  linux-image-6.1.0-[0-9]+-cloud-amd64 (re)",
                "ii  linux-image-6.1.0-…-cloud-amd64",
            ),
            (
                "lxc-stop -t 1: [1-9][0-9]{3} ms (re)",
                "lxc-stop -t 1: … ms",
            ),
            (
                "lxc-stop -t 4: ([0-9]{1,3}|[0-3][0-9]{3}) ms (re)",
                "lxc-stop -t 4: … ms",
            ),
            (
                "mount: /: (mount point is busy\\.|fsconfig\\(\\) failed: .*) (re)",
                "mount: /: mount point is busy.",
            ),
            ("real\\s+0m[0-4]\\.[0-9]+s (re)", "real 0m…s"),
            ("^a(bc)+d$ (re)", "a…d"),
            ("x[]a]y (re)", "x…y"),
        ];
        for (given, shown) in table {
            assert_eq!(line(given), shown, "{given}");
        }
    }

    #[test]
    fn transcripts_keep_their_commands_and_fences() {
        let text = "  ```console recipe=a\n  $ ip -br link [..]\n  br0 [..] UP\n  $ x (literal)\n  [1]\n  ```\n";
        assert_eq!(
            block(text, "  ", true),
            "  ```console recipe=a\n  $ ip -br link [..]\n  br0 … UP\n  $ x\n  [1]\n  ```\n"
        );
        let expect = "```text recipe=a expect\nS[0-9]+x (re)\n```";
        assert_eq!(
            block(expect, "", false),
            "```text recipe=a expect\nS…x\n```"
        );
    }
}
