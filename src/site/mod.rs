//! The bilingual site: both language trees built in-process with the mdBook
//! library (French at the root, English under `en/`), the `recipes`
//! preprocessor (badges, language switch, accent-folded search), and a small
//! local server that rebuilds when the book changes.

pub mod preprocess;
pub mod status;
pub mod steps;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use mdbook_driver::config::Config;
use mdbook_driver::MDBook;
use mdbook_preprocessor::Preprocessor;

use crate::parse::languages;
pub use preprocess::{RecipesPreprocessor, SiteLayout};
use status::Store;

/// Builds every language of the book into `out` (the first language at the
/// root, the others in sub-folders). The site is built aside and then put in
/// place, so a reader of `out` never sees half a site.
pub fn build(book_dir: &Path, out: &Path, store_path: &Path) -> anyhow::Result<()> {
    let staged = stage(book_dir, out, store_path)?;
    Ok(crate::fsutil::replace_dir(&staged, out)?)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| "site".into(), |n| n.to_string_lossy().into_owned())
}

/// Builds the site into a fresh folder beside `out`; returns it.
fn stage(book_dir: &Path, out: &Path, store_path: &Path) -> anyhow::Result<PathBuf> {
    let langs = languages(book_dir);
    if langs.is_empty() {
        bail!(
            "{}: no book here (expected {0}/fr/book.toml)",
            book_dir.display()
        );
    }
    let out = std::path::absolute(out).context("cannot resolve the output folder")?;
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
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
        let mut config = Config::from_disk(root.join("book.toml"))
            .map_err(|e| anyhow::anyhow!("{}: {e:#}", root.join("book.toml").display()))?;
        config.build.build_dir = match langs.first() == Some(lang) {
            true => out.clone(),
            false => out.join(lang),
        };
        let mut book = MDBook::load_with_config(&root, config)
            .map_err(|e| anyhow::anyhow!("{}: {e:#}", root.display()))?;
        book.with_preprocessor(RecipesPreprocessor {
            lang: lang.clone(),
            layout: layout.clone(),
            store: Store::load(store_path),
        });
        book.build()
            .map_err(|e| anyhow::anyhow!("building the `{lang}` book: {e:#}"))?;
    }
    Ok(out)
}

/// `recipes mdbook [supports RENDERER]`: the preprocessor as mdBook's
/// command protocol runs it (for a plain `mdbook build`).
pub fn mdbook_command(supports: Option<&str>) -> anyhow::Result<i32> {
    if let Some(renderer) = supports {
        return Ok(if renderer == "html" { 0 } else { 1 });
    }
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let (ctx, book) = mdbook_preprocessor::parse_input(input.as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot read mdBook's input (is it mdBook 0.5?): {e:#}"))?;
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
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    serde_json::to_writer(std::io::stdout(), &book)?;
    Ok(0)
}

/// The newest modification time under the given paths.
fn newest(paths: &[PathBuf]) -> SystemTime {
    paths
        .iter()
        .flat_map(|path| crate::fsutil::entries(path))
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Serves the built site on `127.0.0.1:port` and rebuilds it when a page,
/// the theme or the status store changes.
pub fn serve(book_dir: &Path, out: &Path, store_path: &Path, port: u16) -> anyhow::Result<i32> {
    build(book_dir, out, store_path)?;
    // Requests read under the read lock; a rebuild swaps the site in under
    // the write lock, so no request sees the site half replaced.
    let swap = Arc::new(RwLock::new(()));
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let address = listener.local_addr()?.port();
    eprintln!(
        "recipes: serving the book on http://127.0.0.1:{address}/ (English: /en/); Ctrl-C stops"
    );
    let watched = vec![book_dir.to_path_buf(), store_path.to_path_buf()];
    {
        let (book_dir, out, store_path, swap) = (
            book_dir.to_path_buf(),
            out.to_path_buf(),
            store_path.to_path_buf(),
            Arc::clone(&swap),
        );
        std::thread::spawn(move || {
            let mut seen = newest(&watched);
            loop {
                std::thread::sleep(Duration::from_millis(400));
                let now = newest(&watched);
                if now > seen {
                    seen = now;
                    let rebuilt = stage(&book_dir, &out, &store_path).and_then(|staged| {
                        let _writing = swap.write().unwrap_or_else(|e| e.into_inner());
                        Ok(crate::fsutil::replace_dir(&staged, &out)?)
                    });
                    match rebuilt {
                        Ok(()) => eprintln!("recipes: rebuilt the site"),
                        Err(e) => eprintln!("recipes: rebuild failed: {e:#}"),
                    }
                }
            }
        });
    }
    // One short-lived connection per request, each on its own thread: a
    // local preview server needs nothing more.
    for stream in listener.incoming().flatten() {
        let (out, swap) = (out.to_path_buf(), Arc::clone(&swap));
        std::thread::spawn(move || answer(stream, &out, &swap));
    }
    Ok(0)
}

fn answer(mut stream: std::net::TcpStream, out: &Path, swap: &RwLock<()>) {
    use std::io::{BufRead, BufReader, Write};
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // Drain the headers; nothing in them matters here.
    let mut header = String::new();
    while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
        header.clear();
    }
    let url = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (status, kind, body) = {
        let _reading = swap.read().unwrap_or_else(|e| e.into_inner());
        respond(out, url)
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(&body));
}

/// The status line, content type and body for a URL of the built site.
fn respond(out: &Path, url: &str) -> (&'static str, &'static str, Vec<u8>) {
    let path = url.split(['?', '#']).next().unwrap_or("/");
    let path = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let mut file = out.to_path_buf();
    for part in path
        .split('/')
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
    {
        file.push(part);
    }
    if file.is_dir() {
        file.push("index.html");
    }
    let (status, file) = if file.is_file() {
        ("200 OK", file)
    } else {
        // The missing page's language has its own 404 page.
        let language = path
            .split('/')
            .find(|p| !p.is_empty())
            .map(|first| out.join(first).join("404.html"));
        (
            "404 Not Found",
            language
                .filter(|p| p.is_file())
                .unwrap_or_else(|| out.join("404.html")),
        )
    };
    let body = std::fs::read(&file).unwrap_or_default();
    let kind = match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    };
    (status, kind, body)
}
