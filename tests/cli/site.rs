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
fn the_french_site_speaks_french_around_the_text() {
    let site = build_site();
    // mdBook's interface: attribute values, the theme menu, the keyboard
    // help, and its scripts' messages.
    let english = [
        "\"Change theme\"",
        "\"Previous chapter\"",
        "\"Next chapter\"",
        "\"Print this book\"",
        "\"Toggle Searchbar\"",
        "\"Toggle Table of Contents\"",
        "Search this book",
        ">Light<",
        ">Navy<",
        "Keyboard shortcuts",
        "to navigate between chapters",
    ];
    let mut files = pages(site.path());
    files.push(site.path().join("404.html"));
    for page in &files {
        let html = std::fs::read_to_string(page).unwrap();
        for word in english {
            assert!(!html.contains(word), "{}: {word}", page.display());
        }
        assert!(
            html.contains("\"Chapitre précédent\"") || html.contains("\"Chapitre suivant\""),
            "{}",
            page.display()
        );
    }
    let scripts: Vec<PathBuf> = std::fs::read_dir(site.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "js"))
        .collect();
    let all: String = scripts
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(all.contains("Aucun résultat pour"), "the search's messages");
    assert!(!all.contains("search results for"), "the search's messages");
    assert!(!all.contains("'Copy to clipboard'"), "the copy button");
    // The English site keeps mdBook's English.
    let en = std::fs::read_to_string(site.path().join("en/introduction.html")).unwrap();
    assert!(en.contains("\"Previous chapter\"") || en.contains("\"Next chapter\""));
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
    let hash = |id: &str| recipes::status::code_hash(&recipe(id));
    // Its results are keyed by its fixture, and its booted host if any.
    let key = |id: &str| {
        let r = recipe(id);
        recipes::model::result_key(&r.fixture, r.host.as_deref())
    };
    let json = serde_json::json!({"recipes": {
        "convert-image": {"status": "passed", "date": "2026-11-29 10:00 UTC", "fixture": "debian-sysv", "hash": hash("convert-image"), "lang": "fr"},
        "prune-boot-scripts": {"status": "failed", "date": "2026-11-29 10:00 UTC", "fixture": "debian-sysv", "hash": hash("prune-boot-scripts"), "lang": "fr"},
        "network-veth": {"status": "passed", "date": "2026-11-29 10:00 UTC", "fixture": key("network-veth"), "hash": "0000", "lang": "fr"},
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
    assert!(conversion.contains("le 2026-11-29 10:00 UTC, rootfs de test <code>debian-sysv</code>"));
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
    assert!(
        text.contains("chaîne"),
        "the page's own text is kept for teasers"
    );
    // The index's terms are a trie of characters: folded, it has no `î` node.
    assert!(
        !text.contains("\"î\":{"),
        "an accented term is left in the index"
    );
    assert!(
        text.contains("elasticlunr.Index.prototype.search"),
        "the query is folded too"
    );
    // No hidden lists of folded words in the pages any more.
    for page in pages(site.path()) {
        let html = std::fs::read_to_string(&page).unwrap();
        assert!(!html.contains("recipes-fold"), "{}", page.display());
    }
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
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
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
    // Without its slash, a language's folder is redirected, so that the
    // page's relative links resolve in that language.
    let bare = get("/en");
    assert!(bare.starts_with("HTTP/1.1 307"), "{bare}");
    assert!(bare.to_lowercase().contains("location: /en/\r\n"), "{bare}");
    assert!(get("/en/").contains("<html lang=\"en\""));
}

#[test]
fn only_served_pages_carry_the_live_reload_script() {
    let built = build_site();
    let html = std::fs::read_to_string(built.path().join("index.html")).unwrap();
    assert!(!html.contains("__livereload"));
    let out = tempfile::tempdir().unwrap();
    let (_server, port) = serve(out.path());
    assert!(get(port, "/en/network.html").contains("__livereload"));
    // The endpoint answers a websocket handshake.
    let upgrade = {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            stream,
            "GET /__livereload HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        .unwrap();
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).unwrap();
        String::from_utf8_lossy(&head).into_owned()
    };
    assert_eq!(upgrade, "HTTP/1.1 101");
}

/// Node, playwright-core and Chromium (installed when missing), or a
/// failure saying what is missing.
fn browser_dir() -> PathBuf {
    crate::machine::browser_dir()
}

#[test]
#[ignore = "needs Chromium (run with --include-ignored)"]
fn an_open_page_shows_an_edit_of_its_source_without_a_manual_reload() {
    let dir = tempfile::tempdir().unwrap();
    crate::copy_tree(&project().join("book"), &dir.path().join("book"));
    let (_server, port) = serve_book(dir.path(), &dir.path().join("site"));
    for (url, source) in [
        ("en/network.html", "book/en/src/network.md"),
        ("conversion.html", "book/fr/src/conversion.md"),
    ] {
        let result = Command::new("node")
            .arg("live-reload.mjs")
            .arg(format!("http://127.0.0.1:{port}/{url}"))
            .arg(dir.path().join(source))
            .current_dir(browser_dir())
            .output()
            .expect("node runs the browser test");
        assert!(
            result.status.success(),
            "{url}: {}{}",
            stdout(&result),
            String::from_utf8_lossy(&result.stderr)
        );
        assert!(
            stdout(&result).contains("showed the edit"),
            "{}",
            stdout(&result)
        );
    }
}

#[test]
#[ignore = "needs Chromium and npm ci in tests/browser (run with --include-ignored)"]
fn headless_chromium_reads_the_site() {
    let browser_dir = browser_dir();
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

/// The visible prose of a page's `<main>`: no code, scripts or tags.
fn prose(html: &str) -> String {
    let main = html
        .split_once("<main>")
        .and_then(|(_, rest)| rest.rsplit_once("</main>"))
        .map_or("", |(main, _)| main);
    let drop =
        regex::Regex::new(r"(?s)<(pre|code|script|style)\b.*?</(pre|code|script|style)>").unwrap();
    let tags = regex::Regex::new(r"(?s)<[^>]*>").unwrap();
    let text = tags
        .replace_all(&drop.replace_all(main, " "), "")
        .into_owned();
    text.replace("&nbsp;", "\u{a0}")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

#[test]
fn french_pages_have_no_ordinary_space_before_double_marks_or_inside_quotes() {
    let site = build_site();
    let mut french: Vec<PathBuf> = pages(site.path());
    french.push(site.path().join("404.html"));
    let bad = regex::Regex::new(r".{0,25}( [;:!?»]|« ).{0,10}").unwrap();
    let (mut narrow, mut found) = (0, Vec::new());
    for page in &french {
        let text = prose(&std::fs::read_to_string(page).unwrap());
        narrow += text.matches('\u{202f}').count();
        for m in bad.find_iter(&text) {
            found.push(format!("{}: {:?}", page.display(), m.as_str()));
        }
    }
    assert!(
        found.is_empty(),
        "{} ordinary spaces:\n{}",
        found.len(),
        found.join("\n")
    );
    assert!(
        narrow > 20,
        "only {narrow} narrow no-break spaces: is the preprocessor on?"
    );
    // English keeps English spacing.
    let en = prose(&std::fs::read_to_string(site.path().join("en/network.html")).unwrap());
    assert!(!en.contains('\u{202f}'));
}

/// Builds the site of a test project; returns the French page and the
/// French generated page of environments.
fn site_of(p: &crate::Project) -> (String, String) {
    let out = p
        .recipes()
        .args(["book", "build", "--out", "site"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |f: &str| std::fs::read_to_string(p.path().join("site").join(f)).unwrap();
    let english = read("en/proven.html");
    assert!(
        english.contains("Where these recipes were proven"),
        "{english}"
    );
    (read("page.html"), read("proven.html"))
}

#[test]
#[ignore = "needs root (a busybox fixture in the sandbox): run as root with --include-ignored"]
fn one_recipe_on_two_fixtures_shows_both_results_and_where_they_were_proven() {
    crate::require_root();
    let p = crate::Project::new("matrix");
    let out = p
        .recipes()
        .args([
            "run",
            "where-am-i",
            "--fixture",
            "empty",
            "--fixture",
            "busybox",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (page, proven) = site_of(&p);
    for fixture in ["empty", "busybox"] {
        assert!(
            page.contains(&format!(
                "recipe-cell recipe-passed\" data-fixture=\"{fixture}\""
            )),
            "{page}"
        );
        assert!(
            proven.contains(&format!("data-fixture=\"{fixture}\"")),
            "{proven}"
        );
    }
    assert!(
        proven.contains("Où ces recettes ont été prouvées"),
        "{proven}"
    );
    assert!(proven.contains("data-key=\"noyau\""), "{proven}");
    // One table, an environment per row, the recipes linked to their
    // badges; in French, no "fixture" and an empty field says "aucun".
    assert!(
        proven.contains("<table class=\"recipes-envs\">"),
        "{proven}"
    );
    assert!(proven.contains("<th>rootfs de test</th>"), "{proven}");
    assert!(
        proven.contains("<td data-key=\"hôte\">aucun</td>"),
        "{proven}"
    );
    assert!(
        proven.contains(".html#recipe-where-am-i\"><code>where-am-i</code></a>"),
        "{proven}"
    );
    assert!(page.contains("id=\"recipe-where-am-i\""), "{page}");
    assert!(page.contains("par rootfs de test\u{a0}: "), "{page}");
    // The declared fixture's badge keeps its own result.
    assert!(page.contains("recipe-badge recipe-passed\" data-recipe=\"where-am-i\""));
}

#[test]
fn status_stores_of_two_partitions_merge_into_what_the_site_shows() {
    let p = crate::Project::new("passing");
    let store = p.path().join("target/recipes/status.json");
    let mut parts = Vec::new();
    for k in ["1/2", "2/2"] {
        let out = p
            .recipes()
            .args(["test", "--partition", k])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let part = p.path().join(format!("part-{}.json", &k[..1]));
        std::fs::rename(&store, &part).unwrap();
        parts.push(part);
    }
    // A foreign file: a located error, nothing written.
    std::fs::write(p.path().join("other.json"), "{\"name\": 1}").unwrap();
    let out = p
        .recipes()
        .args(["status", "merge", "part-1.json", "other.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("other.json:1: not a status store"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!store.exists());
    let out = p
        .recipes()
        .args(["status", "merge", "part-1.json", "part-2.json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&store).unwrap()).unwrap();
    assert_eq!(merged["format"], "recipes-status");
    assert_eq!(merged["recipes"].as_object().unwrap().len(), 7, "{merged}");
    let (page, proven) = site_of(&p);
    assert!(!page.contains("recipe-untested"), "{page}");
    assert!(proven.contains("data-fixture=\"empty\""), "{proven}");
}

#[test]
fn folded_steps_are_collapsed_and_sessions_read_as_a_person_sees_them() {
    let site = build_site();
    for (dir, summary) in [
        (site.path().to_path_buf(), "<summary>Vérification</summary>"),
        (site.path().join("en"), "<summary>Check</summary>"),
    ] {
        let html = std::fs::read_to_string(dir.join("console.html")).unwrap();
        // Every folded step is collapsed under its summary; the page's
        // console settings are one of them.
        let folds: Vec<&str> = html
            .split("<details class=\"recipe-fold\">")
            .skip(1)
            .map(|rest| &rest[..rest.find("</details>").unwrap()])
            .collect();
        assert!(!folds.is_empty(), "a folded step");
        for folded in &folds {
            assert!(folded.contains(summary), "{folded}");
        }
        assert!(folds.iter().any(|f| f.contains("lxc.tty.dir")), "{folds:?}");
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

#[test]
#[ignore = "needs root (a busybox fixture in the sandbox): run as root with --include-ignored"]
fn the_started_event_names_the_runs_fixture_not_the_declared_one() {
    crate::require_root();
    let p = crate::Project::new("matrix");
    let out = p
        .recipes()
        .args([
            "run",
            "where-am-i",
            "--fixture",
            "busybox",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let started: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "started")
        .collect();
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(started[0]["fixture"], "busybox", "{}", started[0]);
    assert!(started[0].get("host").is_none(), "{}", started[0]);
}
