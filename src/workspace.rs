//! The project on disk as the commands see it: the book folder, the
//! `recipes/` folder beside it (fixture definitions, shell helpers), the
//! status store and the cache of bases.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::check::check_book;
use crate::fixture::Store;
use crate::model::{Book, EMPTY_FIXTURE};
use crate::parse::{load_book_with, BookError, Problem};

/// The book folder and the `recipes/` folder beside it.
pub struct Workspace {
    pub book_dir: PathBuf,
    pub recipes_dir: PathBuf,
}

impl Workspace {
    pub fn new(book: &Path) -> Self {
        let recipes_dir = match book.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.join("recipes"),
            _ => PathBuf::from("recipes"),
        };
        Workspace {
            book_dir: book.to_path_buf(),
            recipes_dir,
        }
    }

    /// The project root: the folder holding `book/` and `recipes/`.
    pub fn project(&self) -> PathBuf {
        self.recipes_dir
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    pub fn status_path(&self) -> PathBuf {
        crate::status::store_path(&self.project())
    }

    pub fn fixtures_dir(&self) -> PathBuf {
        self.recipes_dir.join("fixtures")
    }

    pub fn lib_dir(&self) -> PathBuf {
        self.recipes_dir.join("lib")
    }

    pub fn store(&self) -> Store {
        Store::new(self.fixtures_dir(), &cache_dir())
    }

    /// Every fixture a recipe may name: the defined ones and `empty`.
    pub fn fixture_names(&self) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = self.store().names().into_iter().collect();
        names.insert(EMPTY_FIXTURE.to_string());
        names
    }

    /// The fixtures that boot (`boot = ...`): what `host=` may name.
    pub fn host_names(&self) -> BTreeSet<String> {
        let store = self.store();
        store
            .names()
            .into_iter()
            .filter(|name| {
                store
                    .definition(name)
                    .is_ok_and(|def| def.spec.boot.is_some())
            })
            .collect()
    }

    /// One language of the book, with the problems parsing and the checks
    /// of one language find.
    pub fn load(&self, lang: &str) -> Result<(Book, Vec<Problem>), BookError> {
        let (book, mut problems, _) = load_book_with::<()>(&self.book_dir, lang)?;
        problems.extend(check_book(&book, &self.fixture_names(), &self.host_names()));
        Ok((book, problems))
    }
}

/// Where bases, compiled rust steps and kept fixtures go: `RECIPES_CACHE`,
/// else the user's cache folder.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("RECIPES_CACHE")
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("recipes")))
        .unwrap_or_else(|| std::env::temp_dir().join("recipes-cache"))
}
