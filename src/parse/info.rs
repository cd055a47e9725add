//! The info string of a fenced block: the syntax word, then `key=value`
//! pairs and bare flags separated by spaces or commas (DESIGN §4). A value
//! may be double-quoted to hold spaces or commas (DESIGN §8):
//! `prompt="root@web1:~# "`. Inside the quotes `\"` is a quote and `\\` a
//! backslash; any other backslash is kept as written, so that a regular
//! expression reads as usual (`prompt="\$ "` is the value `\$ `).

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::model::{AttrValue, Attrs};

/// The key that makes a block a step, and names its recipe.
pub const ID_KEY: &str = "recipe";
/// Keys that describe the whole recipe (allowed on its first step only).
pub const RECIPE_KEYS: &[&str] = &[
    "fixture", "at", "host", "needs", "net", "requires", "pids", "memory",
];
/// Keys that describe one step.
pub const STEP_KEYS: &[&str] = &["where", "timeout", "exit", "file", "mode", "prompt"];
/// Bare flags.
pub const FLAGS: &[&str] = &["check", "expect", "fold", "pty"];

/// A parsed info string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub syntax: String,
    pub attrs: Attrs,
}

/// One word of an info string: `key=value` (the value unquoted) or a flag.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Word<'a> {
    key: &'a str,
    value: Option<Cow<'a, str>>,
}

/// Splits an info string into words, honouring double-quoted values. A
/// malformed quote is a problem; the words read so far are kept.
fn words(info: &str) -> (Vec<Word<'_>>, Vec<String>) {
    let mut words = Vec::new();
    let mut problems = Vec::new();
    let separator = |c: char| c.is_whitespace() || c == ',';
    let until_separator = |s: &str| s.find(separator).unwrap_or(s.len());
    let mut rest = info;
    loop {
        rest = rest.trim_start_matches(separator);
        if rest.is_empty() {
            break;
        }
        let key_end = rest
            .find(|c: char| separator(c) || c == '=')
            .unwrap_or(rest.len());
        let key = &rest[..key_end];
        rest = &rest[key_end..];
        let Some(after) = rest.strip_prefix('=') else {
            words.push(Word { key, value: None });
            continue;
        };
        rest = after;
        let value = if let Some(quoted) = rest.strip_prefix('"') {
            let (value, after) = unquote(quoted);
            rest = after.unwrap_or_default();
            if after.is_none() {
                problems.push(format!(
                    "the value of `{key}` opens a quote (`\"`) that is never closed"
                ));
            } else if rest.starts_with(|c: char| !separator(c)) {
                let end = until_separator(rest);
                problems.push(format!(
                    "`{}` follows the closing quote of `{key}`: put it inside the quotes, or separate it with a space",
                    &rest[..end]
                ));
                rest = &rest[end..];
            }
            value
        } else {
            let end = until_separator(rest);
            let value = &rest[..end];
            rest = &rest[end..];
            Cow::Borrowed(value)
        };
        words.push(Word {
            key,
            value: Some(value),
        });
    }
    (words, problems)
}

/// The value of a quoted word, `quoted` starting after its opening quote:
/// `\"` is a quote and `\\` a backslash, any other backslash is kept. With
/// what follows the closing quote, `None` when the quote is never closed.
fn unquote(quoted: &str) -> (Cow<'_, str>, Option<&str>) {
    let Some(end) = quoted.find(['"', '\\']) else {
        return (Cow::Borrowed(quoted), None);
    };
    if quoted[end..].starts_with('"') {
        return (Cow::Borrowed(&quoted[..end]), Some(&quoted[end + 1..]));
    }
    let mut value = String::from(&quoted[..end]);
    let mut chars = quoted[end..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (Cow::Owned(value), Some(&quoted[end + i + 1..])),
            '\\' => match chars.clone().next() {
                Some((_, escaped @ ('"' | '\\'))) => {
                    chars.next();
                    value.push(escaped);
                }
                _ => value.push('\\'),
            },
            c => value.push(c),
        }
    }
    (Cow::Owned(value), None)
}

/// Splits an info string. Returns `None` when the block is not a step (no
/// `recipe=` key). Problems (unknown or repeated keys, a malformed quote)
/// are returned as messages; the step is still built from what could be
/// read.
pub fn parse_info(info: &str) -> Option<(Info, Vec<String>)> {
    // Most fences of a page are not steps: no `recipe` anywhere, no step.
    if !info.contains(ID_KEY) {
        return None;
    }
    let (words, mut problems) = words(info);
    let (first, words) = words.split_first()?;
    // The syntax word is whatever comes first (`rust,ignore` → `rust`).
    let syntax = match &first.value {
        None => first.key.to_string(),
        Some(v) => format!("{}={v}", first.key),
    };
    if !words.iter().any(|w| w.key == ID_KEY && w.value.is_some()) {
        return None;
    }
    let mut attrs = BTreeMap::new();
    for &Word { key, ref value } in words {
        let known = match value {
            Some(_) => [&[ID_KEY], RECIPE_KEYS, STEP_KEYS]
                .into_iter()
                .flatten()
                .find(|k| **k == key),
            None => FLAGS.iter().find(|k| **k == key),
        };
        let Some(&key) = known else {
            let what = if FLAGS.contains(&key) {
                format!("flag `{key}` takes no value")
            } else if takes_value(key) {
                format!("key `{key}` needs a value (`{key}=...`)")
            } else {
                format!(
                    "unknown key `{key}` (known: {}, and the flags {})",
                    [&[ID_KEY], RECIPE_KEYS, STEP_KEYS].concat().join(", "),
                    FLAGS.join(", ")
                )
            };
            problems.push(what);
            continue;
        };
        let value = match value {
            Some(v) => AttrValue::Value(v.to_string()),
            None => AttrValue::Flag(true),
        };
        if attrs.insert(key, value).is_some() {
            problems.push(format!("key `{key}` is given twice"));
        }
    }
    Some((Info { syntax, attrs }, problems))
}

/// An attribute value as an info string writes it: bare when it can be,
/// else double-quoted with `"` and `\` escaped.
pub fn quote_value(value: &str) -> String {
    let plain = !value.is_empty()
        && !value.starts_with('"')
        && !value.contains(|c: char| c.is_whitespace() || c == ',');
    if plain {
        return value.to_string();
    }
    let mut quoted = String::from("\"");
    for c in value.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// Whether `key` is written `key=value`.
fn takes_value(key: &str) -> bool {
    key == ID_KEY || RECIPE_KEYS.contains(&key) || STEP_KEYS.contains(&key)
}

/// `[a-z0-9]+(-[a-z0-9]+)*`
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> AttrValue {
        AttrValue::Value(s.into())
    }

    #[test]
    fn blocks_without_recipe_are_not_steps() {
        assert!(parse_info("sh").is_none());
        assert!(parse_info("").is_none());
        assert!(parse_info("rust,ignore").is_none());
        assert!(parse_info("sh recipes=x").is_none());
    }

    #[test]
    fn spaces_and_commas_separate_words() {
        let (info, problems) = parse_info("console,recipe=a-b  timeout=5s,check").unwrap();
        assert!(problems.is_empty());
        assert_eq!(info.syntax, "console");
        assert_eq!(info.attrs["recipe"], v("a-b"));
        assert_eq!(info.attrs["timeout"], v("5s"));
        assert_eq!(info.attrs["check"], AttrValue::Flag(true));
    }

    #[test]
    fn unknown_and_repeated_keys_are_problems() {
        let (_, problems) = parse_info("sh recipe=a colour=red recipe=b expect=1 file").unwrap();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].contains("unknown key `colour`"));
        assert!(problems[1].contains("twice"));
        assert!(problems[2].contains("`expect` takes no value"));
        assert!(problems[3].contains("`file` needs a value"));
    }

    #[test]
    fn quoted_values_hold_spaces_and_commas() {
        let (info, problems) =
            parse_info(r#"console recipe=a pty prompt="root@web1:~# ",timeout=5s"#).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(info.attrs["prompt"], v("root@web1:~# "));
        assert_eq!(info.attrs["timeout"], v("5s"));
        assert_eq!(info.attrs["pty"], AttrValue::Flag(true));
        let (info, _) = parse_info(r#"sh recipe=a prompt="a, b  c""#).unwrap();
        assert_eq!(info.attrs["prompt"], v("a, b  c"));
        let (info, _) = parse_info(r#"sh prompt="x recipe=y" recipe=a"#).unwrap();
        assert_eq!(info.attrs["prompt"], v("x recipe=y"));
        assert_eq!(info.attrs["recipe"], v("a"));
        // Only a quoted `recipe=` inside a value: not a step.
        assert!(parse_info(r#"sh prompt="recipe=a""#).is_none());
    }

    #[test]
    fn escapes_in_quotes() {
        let cases = [
            (r#"prompt="say \"hi\"""#, r#"say "hi""#),
            (r#"prompt="a\\b""#, r"a\b"),
            (r#"prompt="a\\\"b""#, r#"a\"b"#),
            (r#"prompt="\$ ""#, r"\$ "),
            (r#"prompt="\d+> ""#, r"\d+> "),
            (r#"prompt="""#, ""),
            (r#"prompt=a"b"#, r#"a"b"#),
            (r"prompt=a\b", r"a\b"),
        ];
        for (word, want) in cases {
            let (info, problems) = parse_info(&format!("console recipe=a {word}")).unwrap();
            assert!(problems.is_empty(), "{word}: {problems:?}");
            assert_eq!(info.attrs["prompt"], v(want), "{word}");
            assert_eq!(
                parse_info(&format!("console recipe=a prompt={}", quote_value(want)))
                    .unwrap()
                    .0
                    .attrs["prompt"],
                v(want),
                "{word} round trip"
            );
        }
    }

    #[test]
    fn malformed_quotes_are_problems() {
        let (info, problems) = parse_info(r#"sh recipe=a prompt="open"#).unwrap();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("never closed"), "{problems:?}");
        assert_eq!(info.attrs["prompt"], v("open"));
        let (_, problems) = parse_info(r#"sh recipe=a prompt="x"y timeout=1s"#).unwrap();
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].contains("`y` follows the closing quote"),
            "{problems:?}"
        );
    }

    #[test]
    fn ids() {
        for ok in ["a", "a-b", "net2-veth", "0"] {
            assert!(valid_id(ok), "{ok}");
        }
        for bad in ["", "A", "a_b", "-a", "a-", "a--b", "é", "a b"] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
