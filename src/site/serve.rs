//! `recipes book serve`, the way `mdbook serve` does it: the built site
//! served by axum and tower-http's `ServeDir`, the book watched with notify
//! (debounced), and every open page told to reload through a websocket once
//! the rebuilt site is in place. Only the site built for serving carries the
//! reload script (mdBook's own `live-reload-endpoint` template hook).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use notify_debouncer_full::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{new_debouncer, DebouncedEvent, Debouncer, RecommendedCache};
use tokio::sync::{broadcast, RwLock};
use tower::ServiceExt;
use tower_http::services::ServeDir;

use super::{io, put_in_place, stage, SiteError};

/// The websocket path open pages connect to (mdBook's template builds the
/// address from it).
const LIVE_RELOAD: &str = "__livereload";

/// Changes closer together than this make one rebuild.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// What the server and the rebuilding thread share.
struct Shared {
    out: PathBuf,
    /// Requests read under the read lock; a rebuild swaps the site in under
    /// the write lock, so no request sees the site half replaced.
    swap: RwLock<()>,
    /// One message per rebuilt site; each open page's socket forwards it.
    reload: broadcast::Sender<()>,
}

/// Serves the built site on `127.0.0.1:port`, rebuilds it when a page, the
/// theme or the status store changes, and reloads the open pages.
pub fn serve(book_dir: &Path, out: &Path, store_path: &Path, port: u16) -> Result<i32, SiteError> {
    let out = std::path::absolute(out).map_err(io(out, "resolve the output folder"))?;
    let staged = stage(book_dir, &out, store_path, Some(LIVE_RELOAD))?;
    put_in_place(&staged, &out)?;
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|source| SiteError::Bind { port, source })?;
    let port = listener
        .local_addr()
        .map_err(|source| SiteError::Bind { port, source })?
        .port();
    let shared = Arc::new(Shared {
        out: out.clone(),
        swap: RwLock::new(()),
        reload: broadcast::channel(4).0,
    });
    let _watcher = watch(book_dir, store_path, Arc::clone(&shared))?;
    eprintln!(
        "recipes: serving the book on http://127.0.0.1:{port}/ (English: /en/); pages reload when the book changes; Ctrl-C stops"
    );
    let app = Router::new()
        .route(&format!("/{LIVE_RELOAD}"), get(live_reload))
        .fallback(file)
        .with_state(shared);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(io(&out, "start the server's runtime"))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|source| SiteError::Bind { port, source })?;
        axum::serve(listener, app)
            .await
            .map_err(|source| SiteError::Bind { port, source })
    })?;
    Ok(crate::exit::OK)
}

/// Starts watching the book folder and the status store; each debounced
/// batch of changes rebuilds the site aside, swaps it in and reloads pages.
fn watch(
    book_dir: &Path,
    store_path: &Path,
    shared: Arc<Shared>,
) -> Result<Debouncer<RecommendedWatcher, RecommendedCache>, SiteError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let mut debouncer = new_debouncer(DEBOUNCE, None, tx).map_err(|source| SiteError::Watch {
        path: book_dir.to_path_buf(),
        source,
    })?;
    debouncer
        .watch(book_dir, RecursiveMode::Recursive)
        .map_err(|source| SiteError::Watch {
            path: book_dir.to_path_buf(),
            source,
        })?;
    // The store's folder may not exist before the first run; then only the
    // book is watched.
    if let Some(folder) = store_path.parent().filter(|p| p.is_dir()) {
        let _ = debouncer.watch(folder, RecursiveMode::NonRecursive);
    }
    let (book_dir, store_path) = (book_dir.to_path_buf(), store_path.to_path_buf());
    std::thread::spawn(move || {
        for batch in rx {
            let Ok(events) = batch else { continue };
            if !events
                .iter()
                .any(|e| relevant(e, &book_dir, &store_path, &shared.out))
            {
                continue;
            }
            let rebuilt =
                stage(&book_dir, &shared.out, &store_path, Some(LIVE_RELOAD)).and_then(|staged| {
                    let _writing = shared.swap.blocking_write();
                    put_in_place(&staged, &shared.out)
                });
            match rebuilt {
                Ok(()) => {
                    eprintln!("recipes: rebuilt the site");
                    let _ = shared.reload.send(());
                }
                Err(e) => eprintln!("recipes: rebuild failed: {}", super::diagnostics::chain(&e)),
            }
        }
    });
    Ok(debouncer)
}

/// Whether a change is one the site depends on: a file of the book (not an
/// editor's swap or backup file, not the site itself) or the status store
/// was written, created, renamed or removed. Reads (the build's own) are not
/// changes.
fn relevant(event: &DebouncedEvent, book_dir: &Path, store_path: &Path, out: &Path) -> bool {
    let kind = &event.event.kind;
    if !(kind.is_create() || kind.is_modify() || kind.is_remove()) {
        return false;
    }
    event
        .event
        .paths
        .iter()
        .any(|path| changed(path, book_dir, store_path, out))
}

fn changed(path: &Path, book_dir: &Path, store_path: &Path, out: &Path) -> bool {
    if path.starts_with(out) {
        return false;
    }
    if path.file_name() == store_path.file_name() && path.parent() == store_path.parent() {
        return true;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let scratch = name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.starts_with("#");
    // A path inside the book folder, however it was spelled when watched.
    let in_book = path.starts_with(book_dir)
        || std::path::absolute(book_dir).is_ok_and(|b| path.starts_with(b))
        || std::fs::canonicalize(book_dir).is_ok_and(|b| path.starts_with(b));
    in_book && !scratch
}

/// The websocket of one open page: "reload" after each rebuild.
async fn live_reload(ws: WebSocketUpgrade, State(shared): State<Arc<Shared>>) -> Response<Body> {
    let mut rebuilt = shared.reload.subscribe();
    ws.on_upgrade(move |mut socket: WebSocket| async move {
        loop {
            tokio::select! {
                sent = rebuilt.recv() => {
                    if matches!(sent, Err(broadcast::error::RecvError::Closed)) {
                        break;
                    }
                    if socket.send(Message::Text("reload".into())).await.is_err() {
                        break;
                    }
                }
                received = socket.recv() => {
                    // The page went away (closed, navigated, reloaded).
                    if !matches!(received, Some(Ok(_))) {
                        break;
                    }
                }
            }
        }
    })
}

/// A file of the site; a missing one gets its language's 404 page.
async fn file(State(shared): State<Arc<Shared>>, request: Request<Body>) -> Response<Body> {
    let path = request.uri().path().to_string();
    let _reading = shared.swap.read().await;
    // `ServeDir` refuses `..`, serves `index.html` for folders and sends
    // `/en` to `/en/`, so relative links resolve in the right language.
    let mut response = match ServeDir::new(&shared.out).oneshot(request).await {
        Ok(response) if response.status() != StatusCode::NOT_FOUND => response.into_response(),
        _ => not_found(&shared.out, &path).await,
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The 404 page of the missing page's language (the root language's when
/// the first segment of the path names no other).
async fn not_found(out: &Path, path: &str) -> Response<Body> {
    let language = path
        .split('/')
        .find(|p| !p.is_empty())
        .filter(|p| !p.contains(".."))
        .map(|first| out.join(first).join("404.html"))
        .filter(|p| p.is_file());
    let page = language.unwrap_or_else(|| out.join("404.html"));
    let body = tokio::fs::read(&page).await.unwrap_or_default();
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}
