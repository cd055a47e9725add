//! The info string of a fenced block: the syntax word, then `key=value`
//! pairs and bare flags separated by spaces or commas (DESIGN §4).

use std::collections::BTreeMap;

use crate::model::AttrValue;

/// The key that makes a block a step, and names its recipe.
pub const ID_KEY: &str = "recipe";
/// Keys that describe the whole recipe (allowed on its first step only).
pub const RECIPE_KEYS: &[&str] = &[
    "fixture", "at", "needs", "net", "requires", "pids", "memory",
];
/// Keys that describe one step.
pub const STEP_KEYS: &[&str] = &["where", "timeout", "exit", "file", "mode"];
/// Bare flags.
pub const FLAGS: &[&str] = &["check", "expect"];

/// A parsed info string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub syntax: String,
    pub attrs: BTreeMap<String, AttrValue>,
}

/// Splits an info string. Returns `None` when the block is not a step (no
/// `recipe=` key). Problems (unknown or repeated keys) are returned as
/// messages; the step is still built from what could be read.
pub fn parse_info(info: &str) -> Option<(Info, Vec<String>)> {
    let mut words = info
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty());
    let syntax = words.next()?.to_string();
    let rest: Vec<&str> = words.collect();
    if !rest
        .iter()
        .any(|w| w.split_once('=').is_some_and(|(k, _)| k == ID_KEY))
    {
        return None;
    }
    let mut problems = Vec::new();
    let mut attrs = BTreeMap::new();
    for word in rest {
        let (key, value) = match word.split_once('=') {
            Some((k, v)) => (k, AttrValue::Value(v.to_string())),
            None => (word, AttrValue::Flag(true)),
        };
        let known = match value {
            AttrValue::Value(_) => takes_value(key),
            AttrValue::Flag(_) => FLAGS.contains(&key),
        };
        if !known {
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
        }
        if attrs.insert(key.to_string(), value).is_some() {
            problems.push(format!("key `{key}` is given twice"));
        }
    }
    Some((Info { syntax, attrs }, problems))
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
    fn ids() {
        for ok in ["a", "a-b", "net2-veth", "0"] {
            assert!(valid_id(ok), "{ok}");
        }
        for bad in ["", "A", "a_b", "-a", "a-", "a--b", "é", "a b"] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
