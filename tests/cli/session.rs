//! Terminal sessions (`pty` console blocks) and quoted values.

use std::time::{Duration, Instant};

use crate::{stderr, stdout, Project};

#[test]
fn sessions_drive_a_shell_and_a_login_like_program() {
    let p = Project::new("session");
    let start = Instant::now();
    let out = p
        .recipes()
        .args(["run", "shell-session", "login-session"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // No fixed sleeps: far below the steps' timeouts (5 s each wait).
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_session_that_waits_too_long_shows_the_screen_and_the_line() {
    let p = Project::new("session");
    let out = p.recipes().args(["run", "session-waits"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("TIME session-waits"), "{text}");
    assert!(
        text.contains("book/fr/src/page.md:50: console step"),
        "{text}"
    );
    assert!(
        text.contains("timed out after 1s waiting for the prompt `# ` (to type line 50: `# exit`)"),
        "{text}"
    );
    assert!(text.contains("    # sleep 100\n"), "{text}");
}

#[test]
fn a_wrong_line_fails_when_the_prompt_comes_back() {
    let p = Project::new("session");
    let out = p
        .recipes()
        .args(["run", "session-mismatch", "session-never-ends"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("FAIL session-mismatch"), "{text}");
    assert!(
        text.contains("book/fr/src/page.md:56: console step"),
        "{text}"
    );
    assert!(
        text.contains("the program came back to its prompt without printing line 56: `ho`"),
        "{text}"
    );
    assert!(text.contains("    # echo hi\n    hi\n"), "{text}");
    assert!(
        text.contains("book/fr/src/page.md:62: console step"),
        "{text}"
    );
    assert!(
        text.contains("the program still runs 1s after the last line"),
        "{text}"
    );
}

#[test]
fn bad_sessions_are_located_errors() {
    let p = Project::new("session-errors");
    let out = p.recipes().arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let text = stdout(&out);
    for want in [
        "book/fr/src/page.md:3: a terminal session (`pty`) needs a `$ ` line",
        "book/fr/src/page.md:9: unknown key `Tabb` in `<Tabb>`",
        "book/fr/src/page.md:10: unknown key `qq` in `<Ctrl+a qq>`",
        "book/fr/src/page.md:13: invalid regular expression in `prompt=(root# `: unclosed group",
        "book/fr/src/page.md:17: the value of `prompt` opens a quote (`\"`) that is never closed",
        "book/fr/src/page.md:21: the flag `pty` makes a `console` block a terminal session",
        "book/en/src/page.md:9: unknown key `Tabb`",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let out = p.recipes().args(["run", "unknown-key"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn quoted_values_reach_the_json_list_and_keep_parity() {
    let p = Project::new("session");
    p.recipes().arg("check").assert().code(0);
    let out = p
        .recipes()
        .args(["list", "--format", "json"])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let attrs = |id: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()["steps"][0]["attrs"]
            .clone()
    };
    assert_eq!(attrs("shell-session")["prompt"], "root@web1:~# ");
    assert_eq!(attrs("shell-session")["pty"], true);
    assert_eq!(
        attrs("login-session")["prompt"],
        serde_json::Value::Null,
        "the first step is the file"
    );
    // A prompt that differs in the English page breaks parity.
    let page = p.path().join("book/en/src/page.md");
    let text = std::fs::read_to_string(&page).unwrap();
    std::fs::write(
        &page,
        text.replace("prompt=\"root@web1:~# \"", "prompt=\"root@web1:~#  \""),
    )
    .unwrap();
    let out = p.recipes().arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("shell-session"), "{}", stdout(&out));
}
