use crate::{stderr, stdout, Project};

#[test]
fn a_clean_book_passes() {
    let p = Project::new("edge-fences");
    p.recipes().arg("check").assert().code(0);
}

#[test]
fn every_problem_is_reported_with_its_place_in_one_run() {
    let p = Project::new("broken");
    let out = p.recipes().arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let text = stdout(&out);
    for want in [
        "book/fr/src/a.md:3: unknown key `colour`",
        "book/fr/src/a.md:7: malformed recipe id `Bad_Id`",
        "book/fr/src/a.md:11: `expect` block of recipe `lonely-expect` has no step before it",
        "book/fr/src/a.md:15: malformed transcript: line 16 is output before the first command",
        "book/fr/src/a.md:21: unknown fixture `debian-nope`",
        "book/fr/src/b.md:3: recipe `twice` is already defined on another page, at book/fr/src/a.md:25",
        "book/fr/src/SUMMARY.md:5: `missing.md` is listed but",
        "book/en/src/a.md:29: step 1 of recipe `differs` differs in its body from book/fr/src/a.md:29",
        "book/fr/src/a.md:33: recipe `only-fr` has no counterpart in the `en` book",
        "book/en/src/a.md:33: recipe `only-en` has no counterpart in the `fr` book",
        "book/en/src/a.md:3: unknown key `colour`",
        "recipes/fixtures/typo.toml:4: unknown field `colour`",
        "recipes/fixtures/outside.toml:1: `files` key `/etc/../../escaped` must be an absolute path inside the base",
        "book/fr/src/a.md:37: `pids=0` must be a number of processes",
        "book/fr/src/a.md:37: `memory=12X` must be a size of at least 16M",
        "book/en/src/a.md:37: `at=/var/lib/../etc` must be an absolute path below `/`, without `.` or `..`",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(stderr(&out).contains("25 problems"), "{}", stderr(&out));
}

#[test]
fn attributes_must_match_across_languages() {
    let p = Project::new("passing");
    let page = p.path().join("book/en/src/page.md");
    let text = std::fs::read_to_string(&page).unwrap();
    std::fs::write(
        &page,
        text.replace("recipe=exit-code exit=3", "recipe=exit-code exit=4"),
    )
    .unwrap();
    let out = p.recipes().arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout(&out).contains(
            "book/en/src/page.md:22: step 1 of recipe `exit-code` differs in its attributes"
        ),
        "{}",
        stdout(&out)
    );
}

#[test]
fn run_refuses_a_broken_book() {
    let p = Project::new("broken");
    let out = p.recipes().args(["run", "twice"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("book/fr/src/a.md:3: unknown key"));
}

#[test]
fn a_missing_book_is_a_clear_error() {
    let p = Project::new("broken");
    let out = p
        .recipes()
        .args(["--book", "nowhere", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("nowhere: no book here"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn broken_includes_links_and_anchors_are_reported_in_both_languages() {
    let p = Project::new("broken-links");
    let out = p.recipes().arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let text = stdout(&out);
    for lang in ["fr", "en"] {
        for want in [
            "page.md:5: `{{#include does-not-exist.md}}`: book/LANG/src/does-not-exist.md does not exist",
            "page.md:7: link to `missing.md`: the page book/LANG/src/missing.md does not exist",
            "page.md:9: link to `sub/other.md#nulle-part`: no heading of sub/other.md makes the anchor `#nulle-part`",
            "page.md:13: `{{#include ../../snippets/code.rs:absent}}`: ",
            "page.md:15: link to `#introuvable`: no heading of this page makes the anchor `#introuvable`",
            "page.md:15: link to `draft.md`: SUMMARY.md does not list draft.md",
            "page.md:21: `{{#include sub/other.md:10:10}}`: line 10 cuts the code block at lines 9–12 of book/LANG/src/sub/other.md (its body is lines 10–11)",
            "page.md:23: `{{#include sub/other.md:40:}}`: line 40 is past the end of book/LANG/src/sub/other.md, which has 12 lines",
        ] {
            let want = format!("book/{lang}/src/{}", want.replace("LANG", lang));
            assert!(text.contains(&want), "missing {want:?} in:\n{text}");
        }
    }
    // What resolves is not reported: anchors of headings (accents, `--`),
    // includes with an existing ANCHOR, `.html` links, escaped directives.
    for fine in [
        "#des-liens-cassés",
        "#broken-links",
        "lhôte--et-le-pont",
        "code.rs:main",
        "other.html#deux",
        "nope.md",
        "other.md:10:11",
    ] {
        assert!(!text.contains(fine), "{fine} reported in:\n{text}");
    }
    assert!(stderr(&out).contains("16 problems"), "{}", stderr(&out));
}

#[test]
fn book_build_shows_mdbooks_own_errors_and_fails() {
    let p = Project::new("broken-links");
    let out = p
        .recipes()
        .args(["book", "build", "--out", "site"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("ERROR") && err.contains("{{#include does-not-exist.md}}"),
        "{err}"
    );
    assert!(err.contains("mdBook reported"), "{err}");
    // The site is still written, so the author can look at it.
    assert!(p.path().join("site/page.html").is_file());
}

#[test]
fn check_speaks_json_and_github_annotations() {
    let p = Project::new("broken");
    let human = p.recipes().arg("check").output().unwrap();
    let json = p
        .recipes()
        .args(["check", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(json.status.code(), Some(2));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&json.stdout).unwrap();
    let lines: Vec<String> = stdout(&human).lines().map(str::to_string).collect();
    // The same problems, in the same order, as the human form.
    let from_json: Vec<String> = list
        .iter()
        .map(|p| {
            assert_eq!(p.as_object().unwrap().len(), 3, "{p}");
            format!(
                "{}:{}: {}",
                p["path"].as_str().unwrap(),
                p["line"],
                p["message"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(from_json, lines);
    let github = p
        .recipes()
        .args(["check", "--format", "github"])
        .output()
        .unwrap();
    assert_eq!(github.status.code(), Some(2));
    let annotations = stdout(&github);
    assert_eq!(annotations.lines().count(), list.len());
    assert!(
        annotations.contains("::error file=book/en/src/a.md,line=7::malformed recipe id `Bad_Id`"),
        "{annotations}"
    );
    assert!(annotations.lines().all(|l| l.starts_with("::error file=")));
    let clean = Project::new("passing");
    let out = clean
        .recipes()
        .args(["check", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "[]\n");
}
