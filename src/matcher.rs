//! Expected-output matching (DESIGN §4): plain lines match themselves, `[..]`
//! matches any text inside a line, a line `...` matches any number of lines,
//! a line ending in ` (re)` is a regular expression for the whole line.

use regex::Regex;

/// One expected line, compiled.
#[derive(Debug, Clone)]
pub enum Pattern {
    Exact(String),
    Glob(Vec<String>),
    Regex(Regex),
    Any,
}

impl Pattern {
    /// Compiles a line. An invalid regular expression is an error message.
    pub fn new(line: &str) -> Result<Pattern, String> {
        if line == "..." {
            return Ok(Pattern::Any);
        }
        if let Some(re) = line.strip_suffix(" (re)") {
            return Regex::new(&format!("^(?:{re})$"))
                .map(Pattern::Regex)
                .map_err(|e| format!("invalid regular expression `{re}`: {e}"));
        }
        if line.contains("[..]") {
            return Ok(Pattern::Glob(
                line.split("[..]").map(str::to_string).collect(),
            ));
        }
        Ok(Pattern::Exact(line.to_string()))
    }

    /// Whether this pattern matches one actual line (`...` matches any line).
    pub fn matches(&self, actual: &str) -> bool {
        match self {
            Pattern::Exact(s) => s == actual,
            Pattern::Regex(re) => re.is_match(actual),
            Pattern::Any => true,
            Pattern::Glob(parts) => glob_matches(parts, actual),
        }
    }
}

fn glob_matches(parts: &[String], actual: &str) -> bool {
    let (first, rest) = parts.split_first().expect("split yields one part");
    let Some(mut remaining) = actual.strip_prefix(first.as_str()) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return remaining.is_empty();
    };
    for part in middle {
        match remaining.find(part.as_str()) {
            Some(i) => remaining = &remaining[i + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last.as_str())
}

/// Compiles every expected line; the first invalid one is an error.
pub fn compile(expected: &[String]) -> Result<Vec<Pattern>, String> {
    expected.iter().map(|l| Pattern::new(l)).collect()
}

/// Whether the actual lines match the expected patterns as a whole.
pub fn matches(patterns: &[Pattern], actual: &[&str]) -> bool {
    // reachable[j]: the first i patterns can consume the first j lines.
    let mut reachable = vec![false; actual.len() + 1];
    reachable[0] = true;
    for pattern in patterns {
        let mut next = vec![false; actual.len() + 1];
        for j in 0..=actual.len() {
            if !reachable[j] {
                continue;
            }
            if matches!(pattern, Pattern::Any) {
                next[j..].iter_mut().for_each(|r| *r = true);
                break;
            }
            if j < actual.len() && pattern.matches(actual[j]) {
                next[j + 1] = true;
            }
        }
        reachable = next;
    }
    reachable[actual.len()]
}

/// The actual lines rewritten so that lines a pattern accepts read as the
/// pattern, for a readable diff against the expected lines.
pub fn normalise<'a>(
    expected: &'a [String],
    patterns: &[Pattern],
    actual: &[&'a str],
) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut j = 0;
    let mut i = 0;
    while i < patterns.len() && j < actual.len() {
        if matches!(patterns[i], Pattern::Any) {
            out.push(expected[i].as_str());
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
            out.push(expected[i].as_str());
            i += 1;
            j += 1;
        } else {
            out.push(actual[j]);
            j += 1;
        }
    }
    out.extend(&actual[j..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(expected: &[&str], actual: &[&str]) -> bool {
        let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        matches(&compile(&expected).unwrap(), actual)
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
        ];
        for (pattern, actual, want) in cases {
            assert_eq!(
                Pattern::new(pattern).unwrap().matches(actual),
                *want,
                "{pattern:?} vs {actual:?}"
            );
        }
    }

    #[test]
    fn ellipsis_spans_lines() {
        assert!(check(&["a", "...", "z"], &["a", "b", "c", "z"]));
        assert!(check(&["a", "...", "z"], &["a", "z"]));
        assert!(check(&["..."], &[]));
        assert!(check(&["...", "z"], &["z", "z"]));
        assert!(!check(&["a", "...", "z"], &["a", "b"]));
        assert!(!check(&["a"], &["a", "b"]));
        assert!(!check(&["a", "b"], &["a"]));
        assert!(check(&[], &[]));
    }

    #[test]
    fn bad_regex_is_an_error() {
        assert!(Pattern::new("( (re)")
            .unwrap_err()
            .contains("invalid regular expression"));
    }

    #[test]
    fn normalise_keeps_matched_lines_as_patterns() {
        let expected: Vec<String> = ["a[..]", "...", "z"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let patterns = compile(&expected).unwrap();
        assert_eq!(
            normalise(&expected, &patterns, &["abc", "q", "y"]),
            ["a[..]", "...", "q", "y"]
        );
        assert_eq!(
            normalise(&expected, &patterns, &["abc", "q", "z", "w"]),
            ["a[..]", "...", "z", "w"]
        );
    }
}
