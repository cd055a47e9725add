//! The published site: built in-process from the real book, checked as
//! files, through mdBook's own command-preprocessor protocol, and in Debian's
//! headless Chromium.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::stdout;

fn project() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn build_site() -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(assert_cmd::cargo::cargo_bin("recipes"))
        .args(["book", "build", "--out"])
        .arg(out.path())
        .current_dir(project())
        .status()
        .unwrap();
    assert!(status.success());
    out
}

fn pages(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
        .filter(|p| {
            !["404.html", "print.html", "toc.html"]
                .contains(&p.file_name().unwrap().to_str().unwrap())
        })
        .collect();
    found.sort();
    found
}

#[test]
fn both_languages_are_built_with_their_lang_and_a_switch_to_the_twin_page() {
    let site = build_site();
    let fr = pages(site.path());
    let en = pages(&site.path().join("en"));
    assert!(fr.len() >= 10, "{fr:?}");
    assert_eq!(fr.len(), en.len());
    for (lang, dir, pages) in [
        ("fr", site.path().to_path_buf(), &fr),
        ("en", site.path().join("en"), &en),
    ] {
        for page in pages.iter() {
            let html = std::fs::read_to_string(page).unwrap();
            assert!(
                html.contains(&format!("<html lang=\"{lang}\"")),
                "{}",
                page.display()
            );
            let href = html
                .split("class=\"lang-switch-link\" href=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_else(|| panic!("no language switch in {}", page.display()));
            let target = dir.join(href);
            let target = std::fs::canonicalize(&target)
                .unwrap_or_else(|_| panic!("{href} from {}", page.display()));
            // index.html is mdBook's copy of the first chapter, whose twin it links to.
            let twin = if page.ends_with("index.html") {
                "introduction.html"
            } else {
                page.file_name().unwrap().to_str().unwrap()
            };
            assert_eq!(target.file_name().unwrap(), twin, "{}", page.display());
        }
    }
    let fr_title = std::fs::read_to_string(site.path().join("conversion.html")).unwrap();
    assert!(fr_title.contains("<title>Convertir une image Debian en conteneur - Construire un serveur LXC à la main</title>"));
    let en_title = std::fs::read_to_string(site.path().join("en/conversion.html")).unwrap();
    assert!(en_title.contains("<title>Converting a Debian image into a container - Building an LXC server by hand</title>"));
}

#[test]
fn every_recipe_has_a_badge_with_the_command_to_run_it() {
    let site = build_site();
    for (page, lang_word) in [
        ("conversion.html", "recette"),
        ("en/conversion.html", "recipe"),
    ] {
        let html = std::fs::read_to_string(site.path().join(page)).unwrap();
        for id in ["prune-boot-scripts", "convert-image"] {
            assert!(
                html.contains(&format!("data-recipe=\"{id}\"")),
                "{page}: {id}"
            );
            assert!(
                html.contains(&format!("<code>recipes run {id}</code>")),
                "{page}: {id}"
            );
        }
        assert!(
            html.contains(&format!("{lang_word} <code>convert-image</code>")),
            "{page}"
        );
    }
}

#[test]
fn badges_follow_the_status_store_passed_failed_stale() {
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("book");
    crate::copy_tree(&project().join("book"), &book);
    let store = dir.path().join("target/recipes/status.json");
    std::fs::create_dir_all(store.parent().unwrap()).unwrap();
    // Hashes of the current code, from a real run's store format.
    let (fr_book, _) = recipes::parse::load_book(&book, "fr").unwrap();
    let recipe = |id: &str| {
        fr_book
            .pages
            .iter()
            .flat_map(|p| &p.recipes)
            .find(|r| r.id == id)
            .unwrap()
            .clone()
    };
    let hash = |id: &str| recipes::site::status::code_hash(&recipe(id));
    let json = serde_json::json!({"recipes": {
        "convert-image": {"status": "passed", "date": "2026-11-29 10:00 UTC", "fixture": "debian-sysv", "hash": hash("convert-image"), "lang": "fr"},
        "prune-boot-scripts": {"status": "failed", "date": "2026-11-29 10:00 UTC", "fixture": "debian-sysv", "hash": hash("prune-boot-scripts"), "lang": "fr"},
        "network-veth": {"status": "passed", "date": "2026-11-29 10:00 UTC", "fixture": "busybox", "hash": "0000", "lang": "fr"},
    }});
    std::fs::write(&store, json.to_string()).unwrap();
    let out = dir.path().join("site");
    let status = Command::new(assert_cmd::cargo::cargo_bin("recipes"))
        .args(["book", "build", "--out"])
        .arg(&out)
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let conversion = std::fs::read_to_string(out.join("conversion.html")).unwrap();
    assert!(conversion.contains("recipe-badge recipe-passed\" data-recipe=\"convert-image\""));
    assert!(conversion.contains("le 2026-11-29 10:00 UTC, fixture <code>debian-sysv</code>"));
    assert!(conversion.contains("recipe-badge recipe-failed\" data-recipe=\"prune-boot-scripts\""));
    let network = std::fs::read_to_string(out.join("en/network.html")).unwrap();
    assert!(network.contains("recipe-badge recipe-stale\" data-recipe=\"network-veth\""));
    assert!(network.contains("recipe-badge recipe-untested\" data-recipe=\"network-nat\""));
}

#[test]
fn the_site_references_no_other_host() {
    let site = build_site();
    let mut files = vec![site.path().to_path_buf()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(
                std::fs::read_dir(&path)
                    .unwrap()
                    .flatten()
                    .map(|e| e.path()),
            );
            continue;
        }
        if path.extension().is_some_and(|e| e == "html") {
            let html = std::fs::read_to_string(&path).unwrap();
            for attr in [
                "src=\"http",
                "href=\"http",
                "src=\"//",
                "href=\"//",
                "url(http",
            ] {
                assert!(!html.contains(attr), "{} has {attr}", path.display());
            }
        }
    }
}

#[test]
fn french_search_index_knows_accented_words_without_accents() {
    let site = build_site();
    let index = std::fs::read_dir(site.path())
        .unwrap()
        .flatten()
        .find(|e| {
            e.file_name().to_string_lossy().starts_with("searchindex")
                && e.file_name().to_string_lossy().ends_with(".js")
        })
        .expect("a search index");
    let text = std::fs::read_to_string(index.path()).unwrap();
    assert!(text.contains("chaîne"), "the accented word is indexed");
    assert!(text.contains(" chaine "), "and so is its folded form");
}

#[test]
fn a_plain_mdbook_build_runs_the_recipes_preprocessor_command() {
    // mdBook's driver runs `[preprocessor.recipes] command` as a child
    // process, exactly as the `mdbook` binary would.
    let out = tempfile::tempdir().unwrap();
    let command = format!(
        "{} mdbook",
        assert_cmd::cargo::cargo_bin("recipes").display()
    );
    let root = project().join("book/en");
    let mut config = mdbook_driver::config::Config::from_disk(root.join("book.toml")).unwrap();
    config.set("preprocessor.recipes.command", command).unwrap();
    config.build.build_dir = out.path().to_path_buf();
    let book = mdbook_driver::MDBook::load_with_config(&root, config).unwrap();
    book.build().unwrap();
    let html = std::fs::read_to_string(out.path().join("conversion.html")).unwrap();
    assert!(html.contains("data-recipe=\"convert-image\""));
    assert!(html.contains("lang-switch-link"));
    let supports = |renderer: &str| {
        Command::new(assert_cmd::cargo::cargo_bin("recipes"))
            .args(["mdbook", "supports", renderer])
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(supports("html"), Some(0));
    assert_eq!(supports("latex"), Some(1));
}

/// Kills the server when the test ends, however it ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(out: &Path) -> (Server, u16) {
    serve_book(project(), out)
}

fn serve_book(dir: &Path, out: &Path) -> (Server, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(assert_cmd::cargo::cargo_bin("recipes"))
        .args(["book", "serve", "--port", &port.to_string(), "--out"])
        .arg(out)
        .current_dir(dir)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the server never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (server, port)
}

fn get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn serve_rebuilds_when_a_page_changes() {
    let dir = tempfile::tempdir().unwrap();
    crate::copy_tree(&project().join("book"), &dir.path().join("book"));
    let out = dir.path().join("site");
    let (_server, port) = serve_book(dir.path(), &out);
    assert!(!get(port, "/en/network.html").contains("FRESH-EDIT-MARKER"));
    let page = dir.path().join("book/en/src/network.md");
    let text = std::fs::read_to_string(&page).unwrap();
    std::fs::write(&page, text.replacen("\n", "\n\nFRESH-EDIT-MARKER\n", 1)).unwrap();
    let start = Instant::now();
    while !get(port, "/en/network.html").contains("FRESH-EDIT-MARKER") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the site was not rebuilt"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn serve_answers_pages_and_missing_ones() {
    let out = tempfile::tempdir().unwrap();
    let (_server, port) = serve(out.path());
    let get = |path: &str| get(port, path);
    let page = get("/en/network.html");
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    assert!(page.contains("text/html"));
    assert!(get("/").contains("<html lang=\"fr\""));
    let missing = get("/nowhere.html");
    assert!(
        missing.starts_with("HTTP/1.1 404") && missing.contains("Page introuvable"),
        "{missing}"
    );
    let missing_en = get("/en/nowhere.html");
    assert!(
        missing_en.starts_with("HTTP/1.1 404") && missing_en.contains("Page not found"),
        "{missing_en}"
    );
    assert!(get("/../../etc/passwd").starts_with("HTTP/1.1 404"));
}

#[test]
fn headless_chromium_reads_the_site() {
    let browser_dir = project().join("tests/browser");
    let missing = if !Path::new("/usr/bin/chromium").exists() {
        Some("Debian's chromium is not installed (apt-get install chromium)")
    } else if !browser_dir.join("node_modules/playwright-core").exists() {
        Some("playwright-core is not installed (npm ci in tests/browser)")
    } else if Command::new("node").arg("--version").output().is_err() {
        Some("node is not installed")
    } else {
        None
    };
    if let Some(why) = missing {
        assert!(
            std::env::var_os("RECIPES_TEST_REQUIRE_ALL").is_none(),
            "{why}, and RECIPES_TEST_REQUIRE_ALL is set"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let (_server, port) = serve(out.path());
    let result = Command::new("node")
        .arg("site.mjs")
        .arg(format!("http://127.0.0.1:{port}/"))
        .current_dir(&browser_dir)
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "{}{}",
        stdout(&result),
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(stdout(&result).contains("all browser checks passed"));
}

#[test]
fn folded_steps_are_collapsed_and_sessions_read_as_a_person_sees_them() {
    let site = build_site();
    for (dir, summary) in [
        (site.path().to_path_buf(), "<summary>Vérification</summary>"),
        (site.path().join("en"), "<summary>Check</summary>"),
    ] {
        let html = std::fs::read_to_string(dir.join("console.html")).unwrap();
        let fold = html
            .find("<details class=\"recipe-fold\">")
            .expect("a folded step");
        let folded = &html[fold..fold + html[fold..].find("</details>").unwrap()];
        assert!(folded.contains(summary), "{folded}");
        assert!(folded.contains("lxc.tty.dir"), "{folded}");
        let session = html
            .find("<pre class=\"recipe-session\">")
            .expect("a terminal session");
        let session = &html[session..session + html[session..].find("</pre>").unwrap()];
        assert!(
            session.contains("<kbd>Ctrl</kbd>+<kbd>a</kbd> <kbd>q</kbd>"),
            "{session}"
        );
        assert!(!session.contains("recipe="), "{session}");
        assert!(!html.contains("sleep 2"), "no plumbing left");
    }
}
