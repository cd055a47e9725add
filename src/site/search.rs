//! Accent-insensitive search. mdBook's elasticlunr index keeps accents, so
//! `reseau` never finds `réseau`. After each language is built, the terms of
//! its `searchindex*.js` are folded (NFD, combining marks dropped, `œ` →
//! `oe`), entries that fold together are merged, and a small script that
//! folds the reader's query the same way is appended. The documents (the
//! text teasers show) are left as the page wrote them.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};
use unicode_normalization::UnicodeNormalization;

const PREFIX: &str = "window.search = Object.assign(window.search, JSON.parse('";
const SUFFIX: &str = "'));";
const FOLD_QUERY_JS: &str = include_str!("search-fold.js");

/// A word without its accents: `Réseau` → `Reseau`, `cœur` → `coeur`.
pub fn fold(word: &str) -> String {
    word.nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .collect::<String>()
        .replace('œ', "oe")
        .replace('Œ', "OE")
        .replace('æ', "ae")
        .replace('Æ', "AE")
}

/// Folds the search index files directly in `dir` (one language's build).
/// Files it does not recognise are left alone.
pub fn fold_index(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !(name.starts_with("searchindex") && name.ends_with(".js")) {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        if let Some(folded) = fold_index_js(&text) {
            std::fs::write(&path, folded)?;
        }
    }
    Ok(())
}

/// The folded form of mdBook's `searchindex.js`, or `None` when its shape
/// is not the one this code knows (then search keeps mdBook's behaviour).
pub fn fold_index_js(text: &str) -> Option<String> {
    let quoted = text.trim_end().strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    // mdBook doubles backslashes and escapes single quotes; undo both.
    let mut json = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        json.push(if c == '\\' { chars.next()? } else { c });
    }
    let mut index: Value = serde_json::from_str(&json).ok()?;
    let fields = index.get_mut("index")?.get_mut("index")?.as_object_mut()?;
    for field in fields.values_mut() {
        let root = field.get_mut("root")?;
        *root = fold_tree(root);
    }
    let json = serde_json::to_string(&index).ok()?;
    Some(format!(
        "{PREFIX}{}{SUFFIX}\n{FOLD_QUERY_JS}",
        json.replace('\\', "\\\\").replace('\'', "\\'")
    ))
}

/// elasticlunr's inverted index is a trie: one key per character, and at
/// each node `docs` (ref → `{tf}`) and `df`. Rebuilds it with folded terms.
fn fold_tree(root: &Value) -> Value {
    let mut terms: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    collect(root, &mut String::new(), &mut terms);
    let mut folded = node();
    for (term, docs) in terms {
        let mut at = &mut folded;
        for c in term.chars() {
            at = at
                .as_object_mut()
                .expect("nodes are objects")
                .entry(c.to_string())
                .or_insert_with(node);
        }
        at["df"] = docs.len().into();
        at["docs"] = Value::Object(docs);
    }
    folded
}

fn node() -> Value {
    serde_json::json!({"docs": {}, "df": 0})
}

fn collect(node: &Value, term: &mut String, terms: &mut BTreeMap<String, Map<String, Value>>) {
    let Some(object) = node.as_object() else {
        return;
    };
    if let Some(docs) = object.get("docs").and_then(Value::as_object) {
        if !docs.is_empty() {
            let merged = terms.entry(fold(term)).or_default();
            for (id, entry) in docs {
                // Term frequencies are square roots of counts: add counts.
                let tf = |v: Option<&Value>| v.and_then(|e| e["tf"].as_f64()).unwrap_or(0.0);
                let sum = (tf(merged.get(id)).powi(2) + tf(Some(entry)).powi(2)).sqrt();
                merged.insert(id.clone(), serde_json::json!({ "tf": sum }));
            }
        }
    }
    for (key, child) in object {
        if key == "docs" || key == "df" {
            continue;
        }
        term.push_str(key);
        collect(child, term, terms);
        term.truncate(term.len() - key.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrap(json: &Value) -> String {
        let text = serde_json::to_string(json).unwrap();
        format!(
            "{PREFIX}{}{SUFFIX}",
            text.replace('\\', "\\\\").replace('\'', "\\'")
        )
    }

    fn unwrap(js: &str) -> Value {
        let quoted = js
            .lines()
            .next()
            .unwrap()
            .strip_prefix(PREFIX)
            .unwrap()
            .strip_suffix(SUFFIX)
            .unwrap();
        let json = quoted.replace("\\'", "'").replace("\\\\", "\\");
        serde_json::from_str(&json).unwrap()
    }

    #[test]
    fn folds_words() {
        assert_eq!(fold("réseau"), "reseau");
        assert_eq!(fold("Contrôle hôte"), "Controle hote");
        assert_eq!(fold("cœur"), "coeur");
        assert_eq!(fold("plain"), "plain");
    }

    #[test]
    fn accented_and_plain_terms_merge_and_documents_stay() {
        // "é" then "t" then "é": the term "été" in doc 1; "ete" in doc 2.
        let index = serde_json::json!({
            "doc_urls": ["a.html#x", "b.html"],
            "index": {
                "documentStore": {"docs": {"1": {"body": "un été l'an passé"}}},
                "index": {"body": {"root": {"docs": {}, "df": 0,
                    "é": {"docs": {}, "df": 0, "t": {"docs": {}, "df": 0,
                        "é": {"docs": {"1": {"tf": 1.0}}, "df": 1}}},
                    "e": {"docs": {}, "df": 0, "t": {"docs": {}, "df": 0,
                        "e": {"docs": {"1": {"tf": 1.0}, "2": {"tf": 2.0}}, "df": 2}}}
                }}}
            }
        });
        let folded = unwrap(&fold_index_js(&wrap(&index)).unwrap());
        let root = &folded["index"]["index"]["body"]["root"];
        assert!(root.get("é").is_none());
        let ete = &root["e"]["t"]["e"];
        assert_eq!(ete["df"], 2);
        assert_eq!(ete["docs"]["2"]["tf"], 2.0);
        assert!((ete["docs"]["1"]["tf"].as_f64().unwrap() - 2f64.sqrt()).abs() < 1e-9);
        assert_eq!(
            folded["index"]["documentStore"]["docs"]["1"]["body"],
            "un été l'an passé"
        );
        assert!(fold_index_js(&wrap(&index))
            .unwrap()
            .contains("elasticlunr.Index.prototype.search"));
    }

    #[test]
    fn an_unknown_shape_is_left_alone() {
        assert_eq!(fold_index_js("var x = 1;"), None);
    }
}
