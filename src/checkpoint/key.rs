//! What a checkpoint's name depends on: the tool's version and the shape
//! of a checkpoint, the fixture's definition, every step of the chain and
//! the shell helpers the steps may call. A change to any of them never
//! reuses an old layer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::model::{chain, index, Recipe};

/// The shape of a checkpoint's folder; part of its key.
const CHECKPOINT_FORMAT: &str = "checkpoint 2: upper, files.tar, network.json";

/// The key of the checkpoint at the end of `prerequisites` on the fixture
/// `fixture` whose definition hashes to `definition`: a hash of the tool's
/// version, the fixture's definition and every step of the chain (kind,
/// attributes, body), and the shell helpers the steps may call
/// (`recipes/lib`, as [`lib_digest`] sums it up), so that a change to any
/// of them never reuses an old layer.
pub fn checkpoint_key(
    fixture: &str,
    definition: &str,
    prerequisites: &[&Recipe],
    lib: &str,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(lib);
    hasher.update([0]);
    // What a checkpoint holds (a layer, an archive of files, a network): a
    // build of another version or of an uncommitted tree never reads one
    // of another shape.
    hasher.update(CHECKPOINT_FORMAT);
    hasher.update(env!("RECIPES_VERSION"));
    hasher.update([0]);
    hasher.update(fixture);
    hasher.update([0]);
    hasher.update(definition);
    for recipe in prerequisites {
        hasher.update([1]);
        hasher.update(&recipe.id);
        for step in &recipe.steps {
            hasher.update([2]);
            hasher.update(&step.syntax);
            hasher.update(format!("{:?}", step.attrs));
            hasher.update([0]);
            hasher.update(&step.body);
        }
    }
    crate::digest::short_hex(hasher, 12)
}

/// A digest of the shell helpers' folder: each file's name and contents.
pub fn lib_digest(dir: &Path) -> String {
    let mut files: Vec<PathBuf> = crate::fsutil::entries(dir)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    files.sort();
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update(
            file.strip_prefix(dir)
                .unwrap_or(&file)
                .as_os_str()
                .as_encoded_bytes(),
        );
        hasher.update([0]);
        hasher.update(std::fs::read(&file).unwrap_or_default());
        hasher.update([0xff]);
    }
    crate::digest::short_hex(hasher, 12)
}

/// The checkpoints a run of the book as it is now may start from: each
/// layer's folder name (`FIXTURE-KEY`) with what it holds (`FIXTURE after
/// `a` → `b``), for every chain of `ordered` (the book's recipes) on every
/// fixture of `fixtures` (name and definition hash: a chain also runs on
/// others with `--fixture`).
pub fn current<'f>(
    fixtures: impl Iterator<Item = (&'f str, &'f str)> + Clone,
    ordered: &[&Recipe],
    lib: &str,
) -> BTreeMap<String, String> {
    let mut wanted = BTreeMap::new();
    let all = index(ordered.iter().copied());
    for recipe in ordered {
        let chain = chain(recipe, &all);
        let Some((_, prerequisites)) = chain.split_last() else {
            continue;
        };
        if prerequisites.is_empty() {
            continue;
        }
        let ids: Vec<String> = prerequisites
            .iter()
            .map(|r| format!("`{}`", r.id))
            .collect();
        for (name, definition) in fixtures.clone() {
            let key = checkpoint_key(name, definition, prerequisites, lib);
            wanted.insert(
                format!("{name}-{key}"),
                format!("{name} after {}", ids.join(" → ")),
            );
        }
    }
    wanted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_page;

    fn recipes(page: &str) -> Vec<Recipe> {
        let (recipes, problems) = parse_page(Path::new("p.md"), "p.md", "fr", page);
        assert!(problems.is_empty(), "{problems:?}");
        recipes
    }

    #[test]
    fn a_key_changes_with_what_the_checkpoint_depends_on() {
        let page = "```sh recipe=a\ntrue\n```\n\n```sh recipe=b needs=a\ntrue\n```\n";
        let base = recipes(page);
        let key = |recipes: &[Recipe], fixture, definition, lib| {
            checkpoint_key(fixture, definition, &[&recipes[0]], lib)
        };
        let reference = key(&base, "debian", "h1", "l1");
        assert_eq!(reference.len(), 24, "12 bytes, in hex");
        assert_eq!(reference, key(&base, "debian", "h1", "l1"));
        let changed = recipes(&page.replacen("true", "false", 1));
        for other in [
            key(&base, "trixie", "h1", "l1"),
            key(&base, "debian", "h2", "l1"),
            key(&base, "debian", "h1", "l2"),
            key(&changed, "debian", "h1", "l1"),
        ] {
            assert_ne!(other, reference);
        }
    }

    #[test]
    fn current_checkpoints_are_named_by_fixture_and_chain() {
        let recipes = recipes(
            "```sh recipe=a\ntrue\n```\n\n```sh recipe=b needs=a\ntrue\n```\n\n```sh recipe=c needs=b\ntrue\n```\n",
        );
        let ordered: Vec<&Recipe> = recipes.iter().collect();
        let fixtures = [("debian", "h1"), ("trixie", "h2")];
        let wanted = current(fixtures.iter().copied(), &ordered, "l");
        let labels: Vec<&str> = wanted.values().map(String::as_str).collect();
        assert_eq!(wanted.len(), 4);
        for label in [
            "debian after `a`",
            "debian after `a` → `b`",
            "trixie after `a`",
            "trixie after `a` → `b`",
        ] {
            assert!(labels.contains(&label), "{labels:?}");
        }
        let key = checkpoint_key("debian", "h1", &[&recipes[0]], "l");
        assert_eq!(wanted[&format!("debian-{key}")], "debian after `a`");
    }
}
