//! The status store: what the last `recipes run`/`test` said about each
//! recipe, with a hash of the recipe's code, so the site can tell a passed
//! recipe from one whose code changed since (stale).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fsutil::{write_atomically, FsError};
use crate::model::{Recipe, RecipeIndex};
use crate::outcome::{Outcome, Status};

/// One recipe's last result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// `passed`, `failed`, `timed-out`, `skipped`, `error`.
    pub status: String,
    /// When it ran, as `YYYY-MM-DD HH:MM UTC`.
    pub date: String,
    pub fixture: String,
    /// [`code_hash`] of the recipe when it ran.
    pub hash: String,
    pub lang: String,
}

/// Status by recipe id.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Store {
    pub recipes: BTreeMap<String, Entry>,
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
    hasher
        .finalize()
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Store {
    pub fn load(path: &Path) -> Store {
        std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Merges the outcomes of a run into the store on disk (under a lock,
    /// written aside and renamed). Interrupted runs record nothing.
    pub fn record(path: &Path, outcomes: &[Outcome], recipes: &RecipeIndex) -> Result<(), FsError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(FsError::at("create", dir))?;
        let lock_path = dir.join(".status.lock");
        let lock = File::create(&lock_path).map_err(FsError::at("create", &lock_path))?;
        lock.lock().map_err(FsError::at("lock", &lock_path))?;
        let mut store = Store::load(path);
        let date = utc_now();
        for outcome in outcomes {
            if outcome.status == Status::Interrupted {
                continue;
            }
            let Some(recipe) = recipes.get(outcome.id.as_str()) else {
                continue;
            };
            store.recipes.insert(
                outcome.id.clone(),
                Entry {
                    status: outcome.status.as_str().to_string(),
                    date: date.clone(),
                    fixture: outcome.fixture.clone(),
                    hash: code_hash(recipe),
                    lang: outcome.lang.clone(),
                },
            );
        }
        write_atomically(path, &serde_json::to_vec_pretty(&store).unwrap_or_default())
    }
}

/// The current time as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_now() -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_default()
}
