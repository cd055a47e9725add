//! Reading one language tree of the book: `book.toml` (where the pages
//! are), `SUMMARY.md` (which pages, in which order) and each page, handed
//! to the step grammar in the parent module. A page that SUMMARY lists but
//! that is missing is a located problem; a book that cannot be read at all
//! is a [`BookError`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use pulldown_cmark::{Event, Parser, Tag};

use super::blocks::{LineIndex, PageScan};
use super::{parse_page_with, Problem};
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
    let (book, problems, _) = load_book_with::<()>(book_dir, lang)?;
    Ok((book, problems))
}

/// [`load_book`], and what the reader `S` made of each page on the pass
/// of the Markdown parser that found its steps, in the order of the
/// book's pages. Pages are read and parsed on every processor.
pub fn load_book_with<S: PageScan>(
    book_dir: &Path,
    lang: &str,
) -> Result<(Book, Vec<Problem>, Vec<S>), BookError> {
    let root = book_dir.join(lang);
    let src = source_folder(&root)?;
    let summary_path = src.join("SUMMARY.md");
    let summary = read(&summary_path)?;
    let entries = summary_entries(&summary);
    // A page listed twice is read once.
    let mut first: HashMap<&str, usize> = HashMap::new();
    let mut unique: Vec<&str> = Vec::new();
    for (rel, _) in &entries {
        first.entry(rel.as_str()).or_insert_with(|| {
            unique.push(rel);
            unique.len() - 1
        });
    }
    let mut loaded = map_parallel(&unique, |rel| load_page::<S>(&src, rel, lang));
    // In SUMMARY's order: a page at its first entry, a page that cannot
    // be read at each of its entries.
    let mut problems = Vec::new();
    let mut pages = Vec::new();
    let mut scans = Vec::new();
    for (rel, line) in &entries {
        match &mut loaded[first[rel.as_str()]] {
            Ok(done) => {
                if let Some(page) = done.take() {
                    problems.extend(page.problems);
                    pages.push(page.page);
                    scans.push(page.scan);
                }
            }
            Err(e) => problems.push(Problem {
                location: Location {
                    path: summary_path.as_path().into(),
                    line: *line,
                },
                message: e.to_string(),
            }),
        }
    }
    let book = Book {
        lang: lang.to_string(),
        root,
        src,
        pages,
    };
    Ok((book, problems, scans))
}

/// The pages' folder of the language tree `root`, as its `book.toml` says.
fn source_folder(root: &Path) -> Result<PathBuf, BookError> {
    let toml_path = root.join("book.toml");
    if !toml_path.is_file() {
        return Err(BookError::NoLanguage {
            path: root.to_path_buf(),
        });
    }
    let config: BookToml = toml::from_str(&read(&toml_path)?).map_err(|e| BookError::Toml {
        path: toml_path.clone(),
        message: e.message().to_string(),
    })?;
    Ok(root.join(config.book.src.as_deref().unwrap_or("src")))
}

/// One page read and parsed.
struct LoadedPage<S> {
    page: Page,
    problems: Vec<Problem>,
    scan: S,
}

/// A page SUMMARY lists that cannot be read: a problem located at its
/// entry.
#[derive(Debug, thiserror::Error)]
enum PageError {
    #[error("`{rel}` is listed but {} does not exist", path.display())]
    Missing { rel: String, path: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Reads and parses the page `rel` of the folder `src`. `Some` until the
/// page is taken in SUMMARY's order.
fn load_page<S: PageScan>(
    src: &Path,
    rel: &str,
    lang: &str,
) -> Result<Option<LoadedPage<S>>, PageError> {
    let path = src.join(rel);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let (recipes, problems, scan) = parse_page_with::<S>(&path, rel, lang, &text);
            let page = Page {
                rel: rel.to_string(),
                path,
                recipes,
            };
            Ok(Some(LoadedPage {
                page,
                problems,
                scan,
            }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(PageError::Missing {
            rel: rel.to_string(),
            path,
        }),
        Err(source) => Err(PageError::Read { path, source }),
    }
}

/// `f` over `items` on every processor (threads taking the next item as
/// they finish one), the results in the order of `items`.
fn map_parallel<I: Sync, R: Send>(items: &[I], f: impl Fn(&I) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                return done;
            };
            done.push((i, f(item)));
        }
    };
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads).map(|_| scope.spawn(work)).collect();
        workers
            .into_iter()
            .flat_map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e))
            })
            .collect()
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
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
