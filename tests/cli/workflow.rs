//! The contributor workflow: `recipes new`, `--bless`, `test --changed`.

use std::process::Command;

use crate::{stderr, stdout, Project};

#[test]
fn new_scaffolds_a_page_in_both_languages_that_checks_and_passes() {
    let p = Project::new("passing");
    let out = p
        .recipes()
        .args([
            "new",
            "nfs-share",
            "--title-fr",
            "Un partage NFS",
            "--title-en",
            "An NFS share",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    for (lang, title) in [("fr", "Un partage NFS"), ("en", "An NFS share")] {
        let page = std::fs::read_to_string(p.path().join(format!("book/{lang}/src/nfs-share.md")))
            .unwrap();
        assert!(page.starts_with(&format!("# {title}\n")), "{page}");
        assert!(page.contains("```sh recipe=nfs-share\n"));
        let summary =
            std::fs::read_to_string(p.path().join(format!("book/{lang}/src/SUMMARY.md"))).unwrap();
        assert!(
            summary.ends_with(&format!("- [{title}](nfs-share.md)\n")),
            "{summary}"
        );
    }
    p.recipes().arg("check").assert().code(0);
    p.recipes().args(["run", "nfs-share"]).assert().code(0);
    // Twice, or with a bad id: refused, nothing written.
    let again = p
        .recipes()
        .args(["new", "nfs-share", "--title-fr", "x", "--title-en", "x"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    let bad = p
        .recipes()
        .args(["new", "NFS_share", "--title-fr", "x", "--title-en", "x"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(!p.path().join("book/fr/src/NFS_share.md").exists());
}

#[test]
fn bless_rewrites_failing_outputs_in_both_languages_keeping_patterns() {
    let p = Project::new("bless");
    let before_en = std::fs::read_to_string(p.path().join("book/en/src/page.md")).unwrap();
    p.recipes().args(["run", "drift"]).assert().code(1);
    // CI never blesses.
    let refused = p
        .recipes()
        .args(["run", "drift", "--bless"])
        .env("CI", "1")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains("refused when CI is set"));
    assert_eq!(
        std::fs::read_to_string(p.path().join("book/en/src/page.md")).unwrap(),
        before_en
    );

    let out = p
        .recipes()
        .args(["run", "drift", "--bless"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("blessed book/fr/src/page.md"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("blessed book/en/src/page.md"),
        "{}",
        stdout(&out)
    );
    for lang in ["fr", "en"] {
        let page =
            std::fs::read_to_string(p.path().join(format!("book/{lang}/src/page.md"))).unwrap();
        assert!(
            page.contains("$ echo \"stable\"; echo \"changed-now\"\nstable\nchanged-now\n$ date +%Y\n[0-9]{4} (re)\n$ sh -c 'echo out; exit 3'\nout\n[3]\n```"),
            "{page}"
        );
        assert!(
            page.contains("  ```text recipe=drift expect\n  alpha [..]\n  beta\n  ```"),
            "{page}"
        );
    }
    p.recipes().args(["run", "drift"]).assert().code(0);
    p.recipes().arg("check").assert().code(0);
}

#[test]
fn changed_runs_only_the_recipes_of_changed_pages_and_those_that_need_them() {
    let p = Project::new("changed");
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .current_dir(p.path())
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&status.stderr)
        );
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "book"]);
    git(&["checkout", "-q", "-b", "answer"]);
    let page = p.path().join("book/fr/src/b.md");
    let text = std::fs::read_to_string(&page).unwrap();
    std::fs::write(&page, text.replace("# B", "# B, revu")).unwrap();
    let out = p.recipes().args(["test", "--changed"]).output().unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("PASS beta") && text.contains("PASS gamma"),
        "{text}"
    );
    assert!(!text.contains("alpha"), "{text}");
    assert!(
        stderr(&out).contains("2 recipes on pages changed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bless_keeps_placeholders_escapes_syntax_and_says_what_it_could_not_bless() {
    let p = Project::new("bless-safe");
    let out = p
        .recipes()
        .args(["run", "tricky", "stuck", "--bless"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("not blessed: book/fr/src/page.md:23: ended with exit code 3"),
        "{}",
        stderr(&out)
    );
    let pages: Vec<String> = ["fr", "en"]
        .iter()
        .map(|l| std::fs::read_to_string(p.path().join(format!("book/{l}/src/page.md"))).unwrap())
        .collect();
    for page in &pages {
        assert!(
            page.contains("  id [UUID:id]\n  now new\n  $ printf"),
            "{page}"
        );
        assert!(
            page.contains("  $ x (literal)\n  [..] and [IP] (literal)\n  ... (literal)\n  end (re) (literal)\n  ``` (literal)\n  \\e[31mred\\e[0m (escaped)\n  [1] (literal)\n  ```\n\n---\n"),
            "{page}"
        );
        assert!(page.contains("pid [INT]\nfresh\n```"), "{page}");
    }
    // Both languages hold the same code, which now passes and checks.
    let tail = |page: &str| page.split_once('\n').unwrap().1.to_string();
    assert_eq!(tail(&pages[0]), tail(&pages[1]));
    p.recipes().args(["run", "tricky"]).assert().code(0);
    p.recipes().arg("check").assert().code(0);
}

#[test]
fn bless_writes_nothing_when_the_translations_do_not_correspond() {
    let p = Project::new("bless-mismatch");
    let before: Vec<String> = ["fr", "en"]
        .iter()
        .map(|l| std::fs::read_to_string(p.path().join(format!("book/{l}/src/page.md"))).unwrap())
        .collect();
    let out = p
        .recipes()
        .args(["run", "tricky", "--bless", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out)
            .contains("book/en/src/page.md:18: step of recipe `tricky` has other attributes"),
        "{}",
        stderr(&out)
    );
    // Only JSON on stdout.
    for line in stdout(&out).lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
    for (l, text) in ["fr", "en"].iter().zip(before) {
        assert_eq!(
            std::fs::read_to_string(p.path().join(format!("book/{l}/src/page.md"))).unwrap(),
            text
        );
    }
}

#[test]
fn changed_fails_without_git_and_counts_shell_helpers() {
    let p = Project::new("changed");
    // Not a git work tree: an error, never "nothing changed".
    let out = p
        .recipes()
        .args(["test", "--changed"])
        .env("GIT_CEILING_DIRECTORIES", p.path().parent().unwrap())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("--changed needs a git work tree"),
        "{}",
        stderr(&out)
    );
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .current_dir(p.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "book"]);
    git(&["checkout", "-q", "-b", "answer"]);
    std::fs::create_dir_all(p.path().join("recipes/lib")).unwrap();
    std::fs::write(p.path().join("recipes/lib/é helper.sh"), "x=1\n").unwrap();
    let out = p.recipes().args(["test", "--changed"]).output().unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("recipes/lib changed"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("PASS alpha"), "{}", stdout(&out));
}
