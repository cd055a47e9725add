//! The bilingual site: both language trees built in-process with the mdBook
//! library (French at the root, English under `en/`), the `recipes`
//! preprocessor (badges, language switch, French typography), accent-folded
//! search, and a local server that rebuilds and reloads open pages when the
//! book changes (`serve`).

pub mod diagnostics;
pub mod interface;
pub mod preprocess;
pub mod proven;
pub mod reader;
pub mod search;
pub mod serve;
pub mod steps;
pub mod typography;

use std::io::Read;
use std::path::{Path, PathBuf};

use mdbook_driver::config::Config;
use mdbook_driver::MDBook;
use mdbook_preprocessor::Preprocessor;

use crate::parse::languages;
use crate::status::{self, Store};
pub use preprocess::{RecipesPreprocessor, SiteLayout};
pub use serve::serve;

/// Why the site could not be built or served.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("{path}: no book here (expected {path}/fr/book.toml)", path = .0.display())]
    NoBook(PathBuf),
    #[error("{}: cannot {operation}", path.display())]
    Io {
        path: PathBuf,
        operation: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// mdBook's own error, with its chain of causes.
    #[error("{}: {message}", path.display())]
    Mdbook { path: PathBuf, message: String },
    #[error("cannot listen on 127.0.0.1:{port}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: cannot watch for changes", path.display())]
    Watch {
        path: PathBuf,
        #[source]
        source: notify_debouncer_full::notify::Error,
    },
}

fn io(path: &Path, operation: &'static str) -> impl FnOnce(std::io::Error) -> SiteError {
    let path = path.to_path_buf();
    move |source| SiteError::Io {
        path,
        operation,
        source,
    }
}

fn mdbook_error(path: &Path, error: impl std::fmt::Display) -> SiteError {
    SiteError::Mdbook {
        path: path.to_path_buf(),
        message: format!("{error:#}"),
    }
}

/// Builds every language of the book into `out` (the first language at the
/// root, the others in sub-folders). The site is built aside and then put in
/// place, so a reader of `out` never sees half a site.
pub fn build(book_dir: &Path, out: &Path, store_path: &Path) -> Result<(), SiteError> {
    let staged = stage(book_dir, out, store_path, None)?;
    put_in_place(&staged, out)
}

/// Replaces `out` with the freshly built `staged` folder.
fn put_in_place(staged: &Path, out: &Path) -> Result<(), SiteError> {
    let old = out.with_file_name(format!(".{}.old-{}", file_name(out), std::process::id()));
    if out.exists() {
        std::fs::rename(out, &old).map_err(io(out, "move the old site aside"))?;
    }
    std::fs::rename(staged, out).map_err(io(out, "put the new site in place"))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| "site".into(), |n| n.to_string_lossy().into_owned())
}

/// Builds the site into a fresh folder beside `out`; returns it. With a
/// live-reload endpoint, each page opens a websocket there and reloads when
/// told (`serve` only: a built site never carries that script).
fn stage(
    book_dir: &Path,
    out: &Path,
    store_path: &Path,
    live_reload: Option<&str>,
) -> Result<PathBuf, SiteError> {
    let langs = languages(book_dir);
    if langs.is_empty() {
        return Err(SiteError::NoBook(book_dir.to_path_buf()));
    }
    let out = std::path::absolute(out).map_err(io(out, "resolve the output folder"))?;
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent, "create the folder"))?;
    }
    let out = out.with_file_name(format!(".{}.new-{}", file_name(&out), std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let layout = SiteLayout {
        langs: langs.clone(),
        book_dir: book_dir.to_path_buf(),
    };
    // The HTML renderer empties its destination: the root language first.
    for lang in &langs {
        let root = book_dir.join(lang);
        let toml = root.join("book.toml");
        let mut config = Config::from_disk(&toml).map_err(|e| mdbook_error(&toml, e))?;
        if let Some(endpoint) = live_reload {
            config
                .set("output.html.live-reload-endpoint", endpoint)
                .map_err(|e| mdbook_error(&toml, e))?;
        }
        let build_dir = match langs.first() == Some(lang) {
            true => out.clone(),
            false => out.join(lang),
        };
        config.build.build_dir = build_dir.clone();
        let mut book =
            MDBook::load_with_config(&root, config).map_err(|e| mdbook_error(&root, e))?;
        book.with_preprocessor(RecipesPreprocessor {
            lang: lang.clone(),
            layout: layout.clone(),
            store: Store::load(store_path),
        });
        book.build().map_err(|e| mdbook_error(&root, e))?;
        search::fold_index(&build_dir)
            .map_err(io(&build_dir, "fold accents in the search index"))?;
        if lang == "fr" {
            interface::french(&build_dir).map_err(io(&build_dir, "put the interface in French"))?;
            // mdBook renders the 404 page itself, past the preprocessors.
            let page = build_dir.join("404.html");
            if let Ok(html) = std::fs::read_to_string(&page) {
                std::fs::write(&page, typography::french_html(&html))
                    .map_err(io(&page, "write"))?;
            }
        }
    }
    Ok(out)
}

/// `recipes mdbook [supports RENDERER]`: the preprocessor as mdBook's
/// command protocol runs it (for a plain `mdbook build`).
pub fn mdbook_command(supports: Option<&str>) -> Result<i32, SiteError> {
    if let Some(renderer) = supports {
        return Ok(if renderer == "html" { 0 } else { 1 });
    }
    let stdin = Path::new("<stdin>");
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(io(stdin, "read mdBook's input"))?;
    let (ctx, book) =
        mdbook_preprocessor::parse_input(input.as_bytes()).map_err(|e| SiteError::Mdbook {
            path: stdin.to_path_buf(),
            message: format!("cannot read mdBook's input (is it mdBook 0.5?): {e:#}"),
        })?;
    let book_dir = ctx.root.parent().map(Path::to_path_buf).unwrap_or_default();
    let lang = ctx
        .config
        .book
        .language
        .clone()
        .unwrap_or_else(|| "fr".to_string());
    let project = book_dir.parent().map(Path::to_path_buf).unwrap_or_default();
    let preprocessor = RecipesPreprocessor {
        lang,
        layout: SiteLayout {
            langs: languages(&book_dir),
            book_dir,
        },
        store: Store::load(&status::store_path(&project)),
    };
    let book = preprocessor
        .run(&ctx, book)
        .map_err(|e| SiteError::Mdbook {
            path: ctx.root.clone(),
            message: format!("{e:#}"),
        })?;
    serde_json::to_writer(std::io::stdout(), &book).map_err(|e| SiteError::Io {
        path: PathBuf::from("<stdout>"),
        operation: "write the book for mdBook",
        source: e.into(),
    })?;
    Ok(0)
}
