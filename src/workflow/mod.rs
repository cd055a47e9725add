//! The contributor workflow: scaffolding a new page in both languages,
//! writing blessed outputs back into the pages (both languages at once), and
//! finding the pages changed since the main branch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

mod bless;

use crate::fsutil::{write_atomically, FsError};
use crate::model::Location;
use crate::parse::info::valid_id;
use crate::parse::{languages, load_book, BookError};
pub use bless::apply_blessings;

/// Why a workflow command could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("malformed recipe id `{0}`: use lowercase letters and digits in words joined by `-`")]
    MalformedId(String),
    #[error("{}: no book here", .0.display())]
    NoBook(PathBuf),
    #[error("{} already exists", .0.display())]
    PageExists(PathBuf),
    #[error("{location}: recipe `{id}` already exists")]
    RecipeExists { location: Location, id: String },
    #[error("recipe `{recipe}` has no step {step} in the `{lang}` book")]
    NoSuchStep {
        recipe: String,
        step: usize,
        lang: String,
    },
    #[error("{location}: {message}")]
    NotBlessed { location: Location, message: String },
    #[error("{}:{line}: cannot find the block to bless", path.display())]
    NoBlock { path: PathBuf, line: usize },
    #[error("--changed needs a git work tree ({0})")]
    NoWorkTree(GitError),
    #[error("--changed finds no main (or master) branch to compare with")]
    NoMain,
    #[error("{0}")]
    Git(GitError),
    #[error(transparent)]
    Book(#[from] BookError),
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// Why git did not answer.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot run git: {0}")]
    Run(std::io::Error),
    /// git failed, with its stderr.
    #[error("git {} failed: {stderr}", .args.join(" "))]
    Failed { args: Vec<String>, stderr: String },
}

/// `recipes new ID`: a page per language with a first recipe, and its entry
/// in each `SUMMARY.md`. Returns the files written.
pub fn new_page(
    book_dir: &Path,
    id: &str,
    titles: &BTreeMap<String, String>,
) -> Result<Vec<PathBuf>, WorkflowError> {
    if !valid_id(id) {
        return Err(WorkflowError::MalformedId(id.to_string()));
    }
    let langs = languages(book_dir);
    if langs.is_empty() {
        return Err(WorkflowError::NoBook(book_dir.to_path_buf()));
    }
    for lang in &langs {
        let (book, _) = load_book(book_dir, lang)?;
        let page = book.src.join(format!("{id}.md"));
        if page.exists() {
            return Err(WorkflowError::PageExists(page));
        }
        if let Some(r) = book
            .pages
            .iter()
            .flat_map(|p| &p.recipes)
            .find(|r| r.id == id)
        {
            return Err(WorkflowError::RecipeExists {
                location: r.location.clone(),
                id: id.to_string(),
            });
        }
    }
    let mut written = Vec::new();
    for lang in &langs {
        let (book, _) = load_book(book_dir, lang)?;
        let title = titles
            .get(lang)
            .or_else(|| titles.get("en"))
            .cloned()
            .unwrap_or_else(|| id.to_string());
        let intro = if lang == "fr" {
            "Décrivez ici la question, puis la réponse, et prouvez chaque affirmation par une étape."
        } else {
            "Describe the question here, then the answer, and prove each claim with a step."
        };
        let page = format!(
            "# {title}\n\n{intro}\n\n```sh recipe={id}\necho \"{id}: replace this step\"\n```\n\n```text recipe={id} expect\n{id}: replace this step\n```\n"
        );
        let path = book.src.join(format!("{id}.md"));
        write_atomically(&path, page.as_bytes())?;
        written.push(path);
        let summary_path = book.src.join("SUMMARY.md");
        let mut summary =
            std::fs::read_to_string(&summary_path).map_err(FsError::at("read", &summary_path))?;
        if !summary.ends_with('\n') {
            summary.push('\n');
        }
        summary.push_str(&format!("- [{title}]({id}.md)\n"));
        write_atomically(&summary_path, summary.as_bytes())?;
        written.push(summary_path);
    }
    Ok(written)
}

/// What changed since the merge base with the main branch, committed or
/// not.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changed {
    /// Pages, relative to `src/`.
    pub pages: BTreeSet<String>,
    /// Fixture definitions, by name.
    pub fixtures: BTreeSet<String>,
    /// Something under `recipes/lib`, which any step may source.
    pub lib: bool,
}

/// Pages, fixtures and shell helpers changed since the merge base with the
/// main branch, committed or not. A failing git is an error, never "no
/// change"; paths are compared canonical, and names read NUL-separated.
pub fn changed_since_main(
    book_dir: &Path,
    fixtures_dir: &Path,
    lib_dir: &Path,
) -> Result<Changed, WorkflowError> {
    let (top, names) = changed_names(book_dir)?;
    let canonical = |p: &Path| {
        std::fs::canonicalize(p).map_err(|e| FsError {
            operation: "resolve",
            path: p.to_path_buf(),
            source: e,
        })
    };
    let top = canonical(Path::new(&top))?;
    let book = canonical(book_dir)?;
    // Folders that do not exist cannot hold changes, but may have had some
    // (a deleted fixture): compare them under the canonical top.
    let under_top = |p: &Path| {
        canonical(p).or_else(|_| std::path::absolute(p).map_err(FsError::at("resolve", p)))
    };
    let fixtures = under_top(fixtures_dir)?;
    let lib = under_top(lib_dir)?;
    let mut changed = Changed::default();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let path = top.join(String::from_utf8_lossy(name).as_ref());
        if let Ok(rest) = path.strip_prefix(&book) {
            // <lang>/src/<page>
            let parts: Vec<_> = rest.components().collect();
            if parts.len() > 2 && parts[1].as_os_str() == "src" {
                let rel: PathBuf = parts[2..].iter().collect();
                changed
                    .pages
                    .insert(rel.to_string_lossy().replace('\\', "/"));
            }
        } else if let Ok(rest) = path.strip_prefix(&fixtures) {
            if let Some(name) = rest.to_string_lossy().strip_suffix(".toml") {
                changed.fixtures.insert(name.to_string());
            }
        } else if path.starts_with(&lib) {
            changed.lib = true;
        }
    }
    Ok(changed)
}

/// The work tree's top, and the files changed since the merge base with
/// the main branch or not yet tracked, from the top, NUL-separated.
fn changed_names(book_dir: &Path) -> Result<(String, Vec<u8>), WorkflowError> {
    let git = |args: &[&str]| git(book_dir, args);
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).trim().to_string();
    let top = git(&["rev-parse", "--show-toplevel"])
        .map(text)
        .map_err(WorkflowError::NoWorkTree)?;
    let base = ["main", "origin/main", "master", "origin/master"]
        .iter()
        .find_map(|branch| git(&["merge-base", "HEAD", branch]).ok().map(text))
        .ok_or(WorkflowError::NoMain)?;
    // Both list paths from the top (ls-files lists from where it runs).
    let mut names = git(&[
        "-C",
        &top,
        "diff",
        "-z",
        "--name-only",
        "--no-renames",
        &base,
    ])
    .map_err(WorkflowError::Git)?;
    names.extend(
        git(&[
            "-C",
            &top,
            "ls-files",
            "-z",
            "--others",
            "--exclude-standard",
        ])
        .map_err(WorkflowError::Git)?,
    );
    Ok((top, names))
}

/// What `git ARGS`, run in `dir`, prints; an error when it fails.
fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, GitError> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(GitError::Run)?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(GitError::Failed {
            args: args.iter().map(|a| a.to_string()).collect(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}
