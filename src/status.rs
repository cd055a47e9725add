//! The status store: what the last runs said about each recipe on each
//! fixture (results are keyed by (id, fixture), so a `--fixture` run never
//! replaces the result on the recipe's own fixture), with a hash of the
//! recipe's code, so the site can tell a passed recipe from one whose code
//! changed since (stale), and where each result was proven. Stores written
//! by the partitions of one run on several machines are merged into one
//! (`recipes status merge`), keeping the newest result per (id, fixture).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fsutil::{write_atomically, FsError};
use crate::model::{Recipe, RecipeIndex};
use crate::outcome::{Outcome, Status};
use crate::provenance::Provenance;
use crate::report::event::{Event, EventSink, Gathered, Rank};

/// What a store says it is, so a foreign JSON file is never taken for one.
pub const FORMAT: &str = "recipes-status";
pub const VERSION: u32 = 2;

/// One recipe's last result on one fixture.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// `passed`, `failed`, `timed-out`, `skipped`, `error`.
    pub status: String,
    /// When it ran, as `YYYY-MM-DD HH:MM UTC` (shown on the site).
    pub date: String,
    /// When it ran, RFC 3339 in UTC with microseconds: the newest result
    /// wins a merge.
    #[serde(default)]
    pub time: String,
    pub fixture: String,
    /// [`code_hash`] of the recipe when it ran.
    pub hash: String,
    pub lang: String,
    #[serde(default)]
    pub provenance: Provenance,
    /// How long the run took: the next run starts the longest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The statuses of its last runs with this code, oldest first (at most
    /// [`HISTORY`]): the site says when a recipe has been unstable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<String>,
}

/// How many past results an entry keeps.
pub const HISTORY: usize = 10;

impl Entry {
    /// `(failed, runs)` of its history when it both passed and failed
    /// there: the recipe has been unstable.
    pub fn unstable(&self) -> Option<(usize, usize)> {
        let failed = self
            .history
            .iter()
            .filter(|s| matches!(s.as_str(), "failed" | "timed-out" | "error"))
            .count();
        let passed = self.history.iter().filter(|s| *s == "passed").count();
        (failed > 0 && passed > 0).then_some((failed, self.history.len()))
    }
}

/// Results by recipe id, then by fixture.
#[derive(Debug, Serialize, Deserialize)]
pub struct Store {
    pub format: String,
    pub version: u32,
    pub recipes: BTreeMap<String, BTreeMap<String, Entry>>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            format: FORMAT.into(),
            version: VERSION,
            recipes: BTreeMap::new(),
        }
    }
}

/// Why a file cannot be read as a status store.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("{}:{line}:{column}: not a status store: {message}", path.display())]
    Malformed {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}:1: not a status store of recipes ({why})", path.display())]
    Foreign { path: PathBuf, why: String },
}

/// Where the store lives: under the project's `target/`, never in the book.
pub fn store_path(project: &Path) -> PathBuf {
    project.join("target/recipes/status.json")
}

/// A hash of everything that decides what a recipe does: its steps' syntax,
/// attributes and bodies (the same in both languages).
pub fn code_hash(recipe: &Recipe) -> String {
    let mut hasher = Sha256::new();
    for step in &recipe.steps {
        hasher.update(step.syntax.as_bytes());
        for (key, value) in &step.attrs {
            hasher.update(format!("\0{key}={value:?}"));
        }
        hasher.update([0]);
        hasher.update(step.body.as_bytes());
        hasher.update([0xff]);
    }
    crate::digest::short_hex(hasher, 12)
}

/// The first store format: one result per recipe.
#[derive(Deserialize)]
struct StoreV1 {
    recipes: BTreeMap<String, Entry>,
}

impl Store {
    /// The store for the site: an absent or unreadable store is empty (the
    /// site then shows every recipe as untested).
    pub fn load(path: &Path) -> Store {
        match Store::read(path) {
            Ok(store) => store,
            Err(StatusError::Fs(e)) if e.source.kind() == std::io::ErrorKind::NotFound => {
                Store::default()
            }
            Err(e) => {
                eprintln!("recipes: {e}; the site shows no results");
                Store::default()
            }
        }
    }

    /// Reads a store; a malformed or foreign file is a located error. A
    /// store of the first format is read as the current one.
    pub fn read(path: &Path) -> Result<Store, StatusError> {
        let bytes = std::fs::read(path).map_err(FsError::at("read", path))?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| StatusError::Malformed {
                path: path.to_path_buf(),
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            })?;
        let foreign = |why: &str| StatusError::Foreign {
            path: path.to_path_buf(),
            why: why.to_string(),
        };
        let malformed = |e: serde_json::Error| StatusError::Malformed {
            path: path.to_path_buf(),
            line: 1,
            column: 1,
            message: e.to_string(),
        };
        match value.get("format") {
            Some(f) if f == FORMAT => {
                if value.get("version").and_then(|v| v.as_u64()) != Some(VERSION.into()) {
                    return Err(foreign(&format!(
                        "version {} where this recipes reads {VERSION}",
                        value.get("version").unwrap_or(&serde_json::Value::Null)
                    )));
                }
                serde_json::from_value(value).map_err(malformed)
            }
            Some(_) => Err(foreign("its `format` is not `recipes-status`")),
            None if value.get("recipes").is_some_and(|r| r.is_object()) => {
                let old: StoreV1 = serde_json::from_value(value).map_err(malformed)?;
                let mut store = Store::default();
                for (id, entry) in old.recipes {
                    store
                        .recipes
                        .entry(id)
                        .or_default()
                        .insert(entry.fixture.clone(), entry);
                }
                Ok(store)
            }
            None => Err(foreign("no `format`: `recipes-status`")),
        }
    }

    /// The result of `id` on `fixture`.
    pub fn get(&self, id: &str, fixture: &str) -> Option<&Entry> {
        self.recipes.get(id)?.get(fixture)
    }

    /// Every result of `id`, by fixture.
    pub fn results(&self, id: &str) -> impl Iterator<Item = (&String, &Entry)> {
        self.recipes.get(id).into_iter().flatten()
    }

    /// How long `id` took on `fixture` when it last ran, if known.
    pub fn duration(&self, id: &str, fixture: &str) -> Option<std::time::Duration> {
        let ms = self.recipes.get(id)?.get(fixture)?.duration_ms?;
        Some(std::time::Duration::from_millis(ms))
    }

    /// Keeps `entry` unless the store holds a newer result for its
    /// (id, fixture).
    fn keep_newest(&mut self, id: &str, entry: Entry) {
        let slot = self.recipes.entry(id.to_string()).or_default();
        match slot.get(&entry.fixture) {
            Some(old) if old.time > entry.time => {}
            _ => {
                slot.insert(entry.fixture.clone(), entry);
            }
        }
    }

    fn write(&self, path: &Path) -> Result<(), FsError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(FsError::at("create", dir))?;
        write_atomically(path, &serde_json::to_vec_pretty(self).unwrap_or_default())
    }

    /// Merges the outcomes of a run into the store on disk (under a lock,
    /// written aside and renamed). Interrupted runs record nothing. A store
    /// that cannot be read is moved aside, not overwritten.
    pub fn record(
        path: &Path,
        outcomes: &[Outcome],
        recipes: &RecipeIndex,
    ) -> Result<(), StatusError> {
        let _lock = lock(path)?;
        let mut store = match Store::read(path) {
            Ok(store) => store,
            Err(StatusError::Fs(e)) if e.source.kind() == std::io::ErrorKind::NotFound => {
                Store::default()
            }
            Err(e) => {
                let aside = path.with_extension(format!("json.bad-{}", std::process::id()));
                std::fs::rename(path, &aside).map_err(FsError::at("move aside", path))?;
                eprintln!("recipes: {e}; it was moved to {}", aside.display());
                Store::default()
            }
        };
        let (date, time) = (utc_now(), utc_precise());
        for outcome in outcomes {
            if outcome.status == Status::Interrupted {
                continue;
            }
            let Some(recipe) = recipes.get(outcome.id.as_str()) else {
                continue;
            };
            // A skipped or unstartable run says nothing of how long the
            // recipe takes, nor does a failure (it may have stopped at the
            // first step): the last measure stays. A timeout says "at
            // least this long", which is kept.
            let measured = matches!(outcome.status, Status::Passed | Status::TimedOut);
            let duration_ms = if measured {
                Some(outcome.duration.as_millis() as u64)
            } else {
                store
                    .duration(&outcome.id, &outcome.result_key())
                    .map(|d| d.as_millis() as u64)
            };
            let hash = code_hash(recipe);
            let mut history = store
                .get(&outcome.id, &outcome.result_key())
                .filter(|old| old.hash == hash)
                .map(|old| old.history.clone())
                .unwrap_or_default();
            if measured || matches!(outcome.status, Status::Failed | Status::Error(_)) {
                history.push(outcome.status.as_str().to_string());
            }
            history.drain(..history.len().saturating_sub(HISTORY));
            store.keep_newest(
                &outcome.id,
                Entry {
                    status: outcome.status.as_str().to_string(),
                    date: date.clone(),
                    time: time.clone(),
                    fixture: outcome.result_key(),
                    hash,
                    lang: outcome.lang.clone(),
                    provenance: outcome.provenance.clone(),
                    duration_ms,
                    history,
                },
            );
        }
        Ok(store.write(path)?)
    }

    /// `recipes status merge`: the stores `inputs` (and the one at `into`,
    /// if any) merged into `into`, keeping the newest result per
    /// (id, fixture). Every input is read before anything is written, so a
    /// bad one leaves `into` as it was. Returns how many results it holds.
    pub fn merge(inputs: &[PathBuf], into: &Path) -> Result<usize, StatusError> {
        let mut stores = Vec::new();
        for input in inputs {
            stores.push(Store::read(input)?);
        }
        let _lock = lock(into)?;
        let mut merged = match Store::read(into) {
            Ok(store) => store,
            Err(StatusError::Fs(e)) if e.source.kind() == std::io::ErrorKind::NotFound => {
                Store::default()
            }
            Err(e) => return Err(e),
        };
        for store in stores {
            for (id, results) in store.recipes {
                for (_, entry) in results {
                    merged.keep_newest(&id, entry);
                }
            }
        }
        merged.write(into)?;
        Ok(merged.recipes.values().map(BTreeMap::len).sum())
    }
}

/// The lock beside a store, held while it is read and rewritten.
fn lock(path: &Path) -> Result<File, FsError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(FsError::at("create", dir))?;
    let lock_path = dir.join(".status.lock");
    let lock = File::create(&lock_path).map_err(FsError::at("create", &lock_path))?;
    lock.lock().map_err(FsError::at("lock", &lock_path))?;
    Ok(lock)
}

/// The current time as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_now() -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_default()
}

/// The current time as RFC 3339 in UTC with microseconds (sorts as text).
fn utc_precise() -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_default()
}

/// The status store's sink: gathers the outcomes of a run and records
/// them when it finishes (a store that cannot be written is said on
/// stderr; the run's result stands).
pub struct Recorder<'a> {
    path: PathBuf,
    recipes: &'a RecipeIndex<'a>,
    gathered: Gathered,
}

impl<'a> Recorder<'a> {
    pub fn new(path: &Path, recipes: &'a RecipeIndex<'a>, rank: Rank) -> Recorder<'a> {
        Recorder {
            path: path.to_path_buf(),
            recipes,
            gathered: Gathered::new(rank),
        }
    }
}

impl EventSink for Recorder<'_> {
    fn event(&self, event: &Event) {
        self.gathered.hear(event);
        if let Event::RunFinished(_) = event {
            if let Err(e) = Store::record(&self.path, &self.gathered.take(), self.recipes) {
                eprintln!("recipes: cannot record the results for the site: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fixture: &str, status: &str, time: &str) -> Entry {
        Entry {
            status: status.into(),
            date: "d".into(),
            time: time.into(),
            fixture: fixture.into(),
            hash: "h".into(),
            lang: "fr".into(),
            provenance: Provenance::default(),
            duration_ms: None,
            history: Vec::new(),
        }
    }

    #[test]
    fn a_failure_keeps_the_last_measure_of_how_long_a_recipe_takes() {
        use crate::outcome::Status;
        use crate::report::fake::outcome;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status.json");
        let (recipes, _) = crate::parse::parse_page(
            Path::new("p.md"),
            "p.md",
            "fr",
            "```sh recipe=a\ntrue\n```\n",
        );
        let all = crate::model::index(&recipes);
        let took = |status: Status, ms: u64| {
            let mut o = outcome("a", status);
            o.duration = std::time::Duration::from_millis(ms);
            o.provenance.host = "none".into();
            Store::record(&path, &[o], &all).unwrap();
            let store = Store::read(&path).unwrap();
            store.duration("a", "empty").map(|d| d.as_millis())
        };
        assert_eq!(took(Status::Passed, 5000), Some(5000));
        // Stopped at its first step: says nothing of its length.
        assert_eq!(took(Status::Failed, 100), Some(5000));
        assert_eq!(took(Status::TimedOut, 9000), Some(9000));
        let history = Store::read(&path)
            .unwrap()
            .get("a", "empty")
            .unwrap()
            .history
            .clone();
        assert_eq!(history, ["passed", "failed", "timed-out"]);
    }

    #[test]
    fn an_entry_is_unstable_when_its_history_both_passed_and_failed() {
        let mut e = entry("empty", "passed", "t");
        assert_eq!(e.unstable(), None);
        e.history = vec!["passed".into(), "passed".into()];
        assert_eq!(e.unstable(), None);
        e.history = vec!["passed".into(), "timed-out".into(), "passed".into()];
        assert_eq!(e.unstable(), Some((1, 3)));
        e.history = vec!["failed".into(), "error".into()];
        assert_eq!(e.unstable(), None, "always failing is not unstable");
    }

    #[test]
    fn merge_keeps_the_newest_result_per_recipe_and_fixture_and_refuses_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, store: &Store| {
            let path = dir.path().join(name);
            store.write(&path).unwrap();
            path
        };
        let mut a = Store::default();
        a.keep_newest(
            "x",
            entry("bookworm", "passed", "2026-01-02T00:00:00.000000Z"),
        );
        a.keep_newest(
            "x",
            entry("trixie", "failed", "2026-01-01T00:00:00.000000Z"),
        );
        let mut b = Store::default();
        b.keep_newest(
            "x",
            entry("bookworm", "failed", "2026-01-01T00:00:00.000000Z"),
        );
        b.keep_newest(
            "x",
            entry("trixie", "passed", "2026-01-03T00:00:00.000000Z"),
        );
        b.keep_newest("y", entry("empty", "passed", "2026-01-03T00:00:00.000000Z"));
        let inputs = [write("a.json", &a), write("b.json", &b)];
        let into = dir.path().join("out/status.json");
        assert_eq!(Store::merge(&inputs, &into).unwrap(), 3);
        let merged = Store::read(&into).unwrap();
        assert_eq!(merged.get("x", "bookworm").unwrap().status, "passed");
        assert_eq!(merged.get("x", "trixie").unwrap().status, "passed");
        assert_eq!(merged.get("y", "empty").unwrap().status, "passed");
        // A malformed or foreign input: located, and nothing overwritten.
        let before = std::fs::read(&into).unwrap();
        std::fs::write(dir.path().join("bad.json"), "{\n  \"recipes\": [1,\n").unwrap();
        std::fs::write(dir.path().join("other.json"), "{\"name\": \"pkg\"}").unwrap();
        let bad = Store::merge(&[dir.path().join("bad.json")], &into).unwrap_err();
        assert!(bad.to_string().contains("bad.json:3:"), "{bad}");
        let other =
            Store::merge(&[inputs[0].clone(), dir.path().join("other.json")], &into).unwrap_err();
        assert!(
            other
                .to_string()
                .contains("other.json:1: not a status store"),
            "{other}"
        );
        assert_eq!(std::fs::read(&into).unwrap(), before);
    }
}
