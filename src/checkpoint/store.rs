//! The folder of checkpoint layers in the cache, `layers/FIXTURE-KEY`, and
//! the half-made ones a run is still copying (`.NAME.PID.RANDOM.partial`,
//! renamed into place when whole).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The state at the end of a prerequisite chain, kept as a layer in the
/// cache under a key of the fixture's definition, the tool's version and
/// every step of the chain.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// `layers/FIXTURE-KEY`.
    pub dir: PathBuf,
}

impl Checkpoint {
    pub fn exists(&self) -> bool {
        self.dir.is_dir()
    }
}

/// Where checkpoint layers are kept in the cache.
pub fn layers_dir(cache: &Path) -> PathBuf {
    cache.join("layers")
}

/// `.NAME.PID.`, the start of the name of a layer `NAME` being copied by
/// this process (a random part and [`PARTIAL`] follow): one of its own for
/// each capture, since the jobs of one run may keep the same layer at once.
pub fn partial_prefix(name: &str) -> String {
    format!(".{name}.{}.", std::process::id())
}

/// How the name of a half-made layer ends.
pub const PARTIAL: &str = ".partial";

/// Whether `file` is a layer a live run is still copying.
pub fn being_built(file: &str) -> bool {
    let Some(rest) = file.strip_suffix(PARTIAL) else {
        return false;
    };
    rest.rsplit('.')
        .nth(1)
        .and_then(|pid| pid.parse::<u32>().ok())
        .is_some_and(crate::process::process_exists)
}

/// The fixture a layer's folder name (`FIXTURE-KEY`, or a half-made
/// `.FIXTURE-KEY.…`) is for.
fn fixture_of(file: &str) -> Option<&str> {
    file.trim_start_matches('.')
        .rsplit_once('-')
        .map(|(stem, _)| stem)
}

/// The layers in a cache.
pub struct Layers {
    pub dir: PathBuf,
}

/// The layers sorted out: those a run of the book as it is now starts from
/// (with what each holds, sorted by it), and the stale ones (of chains, a
/// fixture or a tool that changed since, or left half-made by a killed run).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sorted {
    pub current: Vec<(PathBuf, String)>,
    pub stale: Vec<PathBuf>,
}

impl Layers {
    pub fn new(cache: &Path) -> Self {
        Layers {
            dir: layers_dir(cache),
        }
    }

    /// The checkpoint `key` on `fixture`.
    pub fn at(&self, fixture: &str, key: &str) -> Checkpoint {
        Checkpoint {
            dir: self.dir.join(format!("{fixture}-{key}")),
        }
    }

    /// Every entry of the folder (none when it does not exist).
    pub fn entries(&self) -> Vec<PathBuf> {
        std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
            .collect()
    }

    /// The entries on `fixture`, or all of them.
    pub fn of_fixture(&self, fixture: Option<&str>) -> Vec<PathBuf> {
        self.entries()
            .into_iter()
            .filter(|path| fixture.is_none() || fixture_of(&file_name(path)) == fixture)
            .collect()
    }

    /// Sorts `entries` by `current` (folder name → what it holds, from
    /// [`super::key::current`]); layers being copied are neither.
    pub fn sort(entries: Vec<PathBuf>, current: &BTreeMap<String, String>) -> Sorted {
        let mut sorted = Sorted::default();
        for path in entries {
            let file = file_name(&path);
            if let Some(label) = current.get(&file) {
                sorted.current.push((path, label.clone()));
            } else if !being_built(&file) {
                sorted.stale.push(path);
            }
        }
        sorted.current.sort_by(|a, b| a.1.cmp(&b.1));
        sorted
    }

    /// Removes a layer (or a stray file: nothing else belongs here).
    pub fn remove(path: &Path) -> std::io::Result<()> {
        if path.is_dir() {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_sort_into_current_stale_and_half_made() {
        let cache = tempfile::tempdir().unwrap();
        let layers = Layers::new(cache.path());
        std::fs::create_dir_all(&layers.dir).unwrap();
        // pid 1 is alive; pids never go this high (pid_max <= 2^22).
        let names = [
            "debian-aaa",
            "debian-old",
            "trixie-bbb",
            ".debian-ccc.1.x1.partial",
            ".debian-ddd.999999999.x2.partial",
        ];
        for name in names {
            std::fs::create_dir(layers.dir.join(name)).unwrap();
        }
        let current: BTreeMap<String, String> = [
            ("trixie-bbb".to_string(), "trixie after `a`".to_string()),
            ("debian-aaa".to_string(), "debian after `a`".to_string()),
        ]
        .into();
        let mut sorted = Layers::sort(layers.entries(), &current);
        sorted.stale.sort();
        let at = |name: &str| layers.dir.join(name);
        assert_eq!(
            sorted,
            Sorted {
                current: vec![
                    (at("debian-aaa"), "debian after `a`".into()),
                    (at("trixie-bbb"), "trixie after `a`".into()),
                ],
                stale: vec![at(".debian-ddd.999999999.x2.partial"), at("debian-old")],
            }
        );
        let mut debian = layers.of_fixture(Some("debian"));
        debian.sort();
        assert_eq!(debian.len(), 4, "{debian:?}");
        assert!(layers.of_fixture(Some("trixie")) == [at("trixie-bbb")]);
        assert_eq!(layers.of_fixture(None).len(), names.len());
        assert_eq!(layers.at("debian", "aaa").dir, at("debian-aaa"));
        assert!(layers.at("debian", "aaa").exists());
        assert!(partial_prefix("x").starts_with(".x."));
    }
}
