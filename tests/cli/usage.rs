//! What users expect of a Rust CLI: completions, a man page, the commit in
//! `--version`, `--quiet`, and a live view on a terminal only.

use crate::{stderr, stdout, Project};

#[test]
fn completions_for_bash_zsh_and_fish_name_the_subcommands() {
    let p = Project::new("passing");
    for (shell, marker) in [
        ("bash", "complete -F _recipes"),
        ("zsh", "#compdef recipes"),
        ("fish", "complete -c recipes"),
    ] {
        let out = p.recipes().args(["completions", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains(marker), "{shell}: {text}");
        for sub in ["check", "run", "test", "completions", "man"] {
            assert!(text.contains(sub), "{shell} completion lacks {sub}");
        }
        assert!(
            !text.contains("__sandbox"),
            "{shell} offers a hidden command"
        );
    }
    let out = p.recipes().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn man_prints_a_roff_page() {
    let out = Project::new("passing")
        .recipes()
        .arg("man")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains(".TH recipes 1"), "{text}");
    assert!(text.contains(".SH NAME") && text.contains(".SH SYNOPSIS"));
    assert!(text.contains("completions"));
}

#[test]
fn version_names_the_commit_in_a_git_checkout() {
    let out = Project::new("passing")
        .recipes()
        .arg("--version")
        .output()
        .unwrap();
    let text = stdout(&out);
    let in_git = std::process::Command::new("git")
        .args(["rev-parse", "--short=10", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success());
    match in_git {
        Some(head) => {
            let head = stdout(&head);
            assert!(
                text.starts_with(&format!(
                    "recipes {} ({}",
                    env!("CARGO_PKG_VERSION"),
                    head.trim()
                )),
                "{text}"
            );
        }
        None => assert_eq!(
            text.trim(),
            format!("recipes {}", env!("CARGO_PKG_VERSION"))
        ),
    }
}

#[test]
fn quiet_prints_only_failures_and_the_summary() {
    let p = Project::new("failing");
    let out = p.recipes().args(["test", "-q"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("FAIL wrong-output"), "{text}");
    assert!(!text.contains("PASS"), "{text}");
    assert!(text.contains("recipes: "), "no summary in {text}");
    let p = Project::new("passing");
    let out = p.recipes().args(["test", "--quiet"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert_eq!(text.trim(), "7 recipes: 7 passed, 0 failed", "{text}");
    assert!(!stderr(&out).contains("not root"), "{}", stderr(&out));
}

#[test]
fn a_terminal_gets_a_live_view_and_a_pipe_plain_lines() {
    let p = Project::new("passing");
    let piped = p.recipes().args(["test", "-j", "2"]).output().unwrap();
    let plain = stdout(&piped);
    assert!(!plain.contains("to go; running"), "{plain}");
    assert!(!plain.contains('\x1b'), "escape codes in a pipe: {plain:?}");
    // `script` gives the run a pseudo-terminal, as a person's shell would.
    let bin = assert_cmd::cargo::cargo_bin("recipes");
    let out = std::process::Command::new("script")
        .args(["-qefc"])
        .arg(format!("{} test -j 2", bin.display()))
        .arg("/dev/null")
        .current_dir(p.path())
        .env("RECIPES_CACHE", crate::cache_dir())
        .output()
        .expect("script(1), from util-linux, runs the live-view test");
    let shown = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("to go; running: "),
        "no live view in {shown:?}"
    );
    assert!(shown.contains("7 recipes: 7 passed, 0 failed"), "{shown}");
}

#[test]
fn json_output_stays_pure_json_on_a_terminal_too() {
    let p = Project::new("passing");
    let bin = assert_cmd::cargo::cargo_bin("recipes");
    let out = std::process::Command::new("script")
        .args(["-qefc"])
        .arg(format!("{} test --format json 2>/dev/null", bin.display()))
        .arg("/dev/null")
        .current_dir(p.path())
        .env("RECIPES_CACHE", crate::cache_dir())
        .output()
        .unwrap();
    for line in stdout(&out).lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<serde_json::Value>(line.trim_end_matches('\r'))
            .unwrap_or_else(|e| panic!("{e}: {line:?}"));
    }
}
