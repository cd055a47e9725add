//! Reading one language tree of the book: `book.toml` (where the pages
//! are), `SUMMARY.md` (which pages, in which order) and each page, handed
//! to the step grammar in the parent module. A page that SUMMARY lists but
//! that is missing is a located problem; a book that cannot be read at all
//! is a [`BookError`].

use std::path::{Path, PathBuf};

use pulldown_cmark::{Event, Parser, Tag};

use super::blocks::LineIndex;
use super::{parse_page, Problem};
use crate::model::{Book, Location, Page};

/// The book could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum BookError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid book.toml: {message}")]
    Toml { path: PathBuf, message: String },
    #[error(
        "{path}: no such language folder (expected {path}/book.toml and {path}/src/SUMMARY.md)"
    )]
    NoLanguage { path: PathBuf },
}

fn read(path: &Path) -> Result<String, BookError> {
    std::fs::read_to_string(path).map_err(|source| BookError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Languages present under the book folder, French first.
pub fn languages(book_dir: &Path) -> Vec<String> {
    let mut langs: Vec<String> = std::fs::read_dir(book_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("book.toml").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    langs.sort_by_key(|l| (l != "fr", l.clone()));
    langs
}

#[derive(serde::Deserialize, Default)]
struct BookToml {
    #[serde(default)]
    book: BookSection,
}

#[derive(serde::Deserialize, Default)]
struct BookSection {
    src: Option<String>,
}

/// Reads one language tree: `book_dir/lang/book.toml`, its `SUMMARY.md` and
/// every page it lists, in order.
pub fn load_book(book_dir: &Path, lang: &str) -> Result<(Book, Vec<Problem>), BookError> {
    let root = book_dir.join(lang);
    let toml_path = root.join("book.toml");
    if !toml_path.is_file() {
        return Err(BookError::NoLanguage { path: root });
    }
    let config: BookToml = toml::from_str(&read(&toml_path)?).map_err(|e| BookError::Toml {
        path: toml_path.clone(),
        message: e.message().to_string(),
    })?;
    let src = root.join(config.book.src.as_deref().unwrap_or("src"));
    let summary_path = src.join("SUMMARY.md");
    let summary = read(&summary_path)?;
    let mut problems = Vec::new();
    let mut pages = Vec::new();
    for (rel, line) in summary_entries(&summary) {
        if pages.iter().any(|p: &Page| p.rel == rel) {
            continue;
        }
        let path = src.join(&rel);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                let message = if e.kind() == std::io::ErrorKind::NotFound {
                    format!("`{rel}` is listed but {} does not exist", path.display())
                } else {
                    format!("cannot read {}: {e}", path.display())
                };
                problems.push(Problem {
                    location: Location {
                        path: summary_path.clone(),
                        line,
                    },
                    message,
                });
                continue;
            }
        };
        let (recipes, page_problems) = parse_page(&path, &rel, lang, &text);
        problems.extend(page_problems);
        pages.push(Page { rel, path, recipes });
    }
    Ok((
        Book {
            lang: lang.to_string(),
            root,
            src,
            pages,
        },
        problems,
    ))
}

/// The page links of a `SUMMARY.md` in order, with their lines. Draft
/// entries (`[Title]()`) and external links have no file and are skipped.
pub fn summary_entries(summary: &str) -> Vec<(String, usize)> {
    let index = LineIndex::new(summary);
    let mut entries = Vec::new();
    for (event, range) in Parser::new(summary).into_offset_iter() {
        if let Event::Start(Tag::Link { dest_url, .. }) = event {
            let dest = dest_url.split('#').next().unwrap_or_default();
            if dest.is_empty() || dest.contains("://") {
                continue;
            }
            let dest = dest.trim_start_matches("./").replace("%20", " ");
            entries.push((dest, index.line(range.start)));
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_links_in_order_with_lines() {
        let summary = "# Summary\n\n[Intro](intro.md)\n\n- [A](a.md)\n  - [B](sub/b.md)\n- [Draft]()\n- [Web](https://example.org)\n";
        assert_eq!(
            summary_entries(summary),
            vec![
                ("intro.md".into(), 3),
                ("a.md".into(), 5),
                ("sub/b.md".into(), 6)
            ]
        );
    }
}
