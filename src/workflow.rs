//! The contributor workflow: scaffolding a new page in both languages,
//! writing blessed outputs back into the pages (both languages at once), and
//! finding the pages changed since the main branch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fsutil::{write_atomically, FsError};
use crate::model::Location;
use crate::outcome::Blessed;
use crate::parse::info::valid_id;
use crate::parse::{languages, load_book, BookError};

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
    #[error("{}:{line}: cannot find the block to bless", path.display())]
    NoBlock { path: PathBuf, line: usize },
    #[error("{0}")]
    Git(&'static str),
    #[error(transparent)]
    Book(#[from] BookError),
    #[error(transparent)]
    Fs(#[from] FsError),
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

/// Writes blessed bodies into the pages of every language (the step is
/// found by recipe id and index, so both translations get the same code).
pub fn apply_blessings(
    book_dir: &Path,
    blessed: &[Blessed],
) -> Result<Vec<PathBuf>, WorkflowError> {
    let mut written = Vec::new();
    for lang in languages(book_dir) {
        let (book, _) = load_book(book_dir, &lang)?;
        let steps: BTreeMap<(String, usize), (PathBuf, usize)> = book
            .pages
            .iter()
            .flat_map(|p| &p.recipes)
            .flat_map(|r| {
                r.steps.iter().enumerate().map(|(i, s)| {
                    (
                        (r.id.clone(), i),
                        (s.location.path.clone(), s.location.line),
                    )
                })
            })
            .collect();
        let mut by_file: BTreeMap<PathBuf, Vec<(usize, &str)>> = BTreeMap::new();
        for b in blessed {
            let Some((path, line)) = steps.get(&(b.recipe.clone(), b.step)) else {
                return Err(WorkflowError::NoSuchStep {
                    recipe: b.recipe.clone(),
                    step: b.step + 1,
                    lang: lang.clone(),
                });
            };
            by_file
                .entry(path.clone())
                .or_default()
                .push((*line, &b.body));
        }
        for (path, mut edits) in by_file {
            let text = std::fs::read_to_string(&path).map_err(FsError::at("read", &path))?;
            edits.sort_by_key(|(line, _)| std::cmp::Reverse(*line));
            let mut result = text.clone();
            for (line, body) in edits {
                result = replace_block_body(&result, line, body).ok_or_else(|| {
                    WorkflowError::NoBlock {
                        path: path.clone(),
                        line,
                    }
                })?;
            }
            if result != text {
                write_atomically(&path, result.as_bytes())?;
                written.push(path);
            }
        }
    }
    Ok(written)
}

/// Replaces the body of the fenced block opening at 1-based `line`, keeping
/// the block's container prefix (list indentation, `> `) and line endings.
fn replace_block_body(text: &str, line: usize, body: &str) -> Option<String> {
    let crlf = text.contains("\r\n");
    let eol = if crlf { "\r\n" } else { "\n" };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let open = lines
        .get(line.checked_sub(1)?)?
        .trim_end_matches(['\r', '\n']);
    let prefix: String = open
        .chars()
        .take_while(|c| c.is_whitespace() || *c == '>')
        .collect();
    let fence = &open[prefix.len()..];
    let marker = fence.chars().next()?;
    let width = fence.chars().take_while(|c| *c == marker).count();
    let close = (line..lines.len()).find(|&i| {
        let l = lines[i].trim_end_matches(['\r', '\n']);
        let l = l.strip_prefix(prefix.trim_end()).unwrap_or(l).trim();
        l.chars().all(|c| c == marker) && l.chars().count() >= width
    })?;
    let mut out: String = lines[..line].concat();
    for body_line in body.lines() {
        if body_line.is_empty() {
            out.push_str(prefix.trim_end());
        } else {
            out.push_str(&prefix);
            out.push_str(body_line);
        }
        out.push_str(eol);
    }
    out.push_str(&lines[close..].concat());
    Some(out)
}

/// Pages (relative to `src/`) and fixtures changed since the merge base with
/// the main branch, committed or not.
pub fn changed_since_main(
    book_dir: &Path,
    fixtures_dir: &Path,
) -> Result<(BTreeSet<String>, BTreeSet<String>), WorkflowError> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(book_dir)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let top = git(&["rev-parse", "--show-toplevel"])
        .ok_or(WorkflowError::Git("--changed needs a git work tree"))?;
    let base = ["main", "origin/main", "master", "origin/master"]
        .iter()
        .find_map(|branch| git(&["merge-base", "HEAD", branch]))
        .ok_or(WorkflowError::Git(
            "no main (or master) branch to compare with",
        ))?;
    let mut files: Vec<String> = git(&["diff", "--name-only", &base])
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    files.extend(
        git(&["ls-files", "--others", "--exclude-standard"])
            .unwrap_or_default()
            .lines()
            .map(str::to_string),
    );
    let top = PathBuf::from(top);
    let book = std::path::absolute(book_dir).map_err(FsError::at("resolve", book_dir))?;
    let fixtures =
        std::path::absolute(fixtures_dir).map_err(FsError::at("resolve", fixtures_dir))?;
    let mut pages = BTreeSet::new();
    let mut changed_fixtures = BTreeSet::new();
    for file in files {
        let path = top.join(&file);
        if let Ok(rest) = path.strip_prefix(&book) {
            // <lang>/src/<page>
            let parts: Vec<_> = rest.components().collect();
            if parts.len() > 2 && parts[1].as_os_str() == "src" {
                let rel: PathBuf = parts[2..].iter().collect();
                pages.insert(rel.to_string_lossy().replace('\\', "/"));
            }
        } else if let Ok(rest) = path.strip_prefix(&fixtures) {
            if let Some(name) = rest.to_string_lossy().strip_suffix(".toml") {
                changed_fixtures.insert(name.to_string());
            }
        }
    }
    Ok((pages, changed_fixtures))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_a_body_and_keeps_prefixes_and_line_endings() {
        let text = "a\n\n```console recipe=x\n$ echo hi\nold\n```\nafter\n";
        assert_eq!(
            replace_block_body(text, 3, "$ echo hi\nhi\n").unwrap(),
            "a\n\n```console recipe=x\n$ echo hi\nhi\n```\nafter\n"
        );
        let quoted = "> ```text recipe=x expect\n> old\n>\n> more\n> ```\n";
        assert_eq!(
            replace_block_body(quoted, 1, "new\n\nlines\n").unwrap(),
            "> ```text recipe=x expect\n> new\n>\n> lines\n> ```\n"
        );
        let crlf = "```text recipe=x expect\r\nold\r\n```\r\n";
        assert_eq!(
            replace_block_body(crlf, 1, "new\n").unwrap(),
            "```text recipe=x expect\r\nnew\r\n```\r\n"
        );
        let longer = "````text recipe=x expect\n```\n````\n";
        assert_eq!(
            replace_block_body(longer, 1, "x\n").unwrap(),
            "````text recipe=x expect\nx\n````\n"
        );
    }
}
