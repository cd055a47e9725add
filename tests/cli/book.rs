//! The book itself is the largest test: every recipe of it, in the sandbox,
//! with every requirement met (CI runs as root).

use std::path::Path;

use assert_cmd::Command;

fn recipes() -> Command {
    let mut cmd = Command::cargo_bin("recipes").unwrap();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RECIPES_CACHE", crate::cache_dir());
    cmd
}

#[test]
fn the_book_checks_clean() {
    recipes().arg("check").assert().success();
}

#[test]
fn both_languages_hold_the_required_recipes() {
    let required = [
        "lxc-isolation",
        "rootfs-base",
        "network-veth",
        "network-nat",
        "console-autologin",
        "prune-boot-scripts",
        "convert-image",
        "boot-mode",
        "boot-order",
        "clean-shutdown",
        "sys-isolation",
        "systemd-guest",
        // The second edition's answers.
        "host-setup",
        "network-persistent",
        "lxc-net-dhcp",
        "config-migration",
        "unprivileged",
        "cgroup-limits",
        "autostart",
        "bind-mount",
        "convert-vm-image",
        "snapshot-clone",
        "audit-rootfs",
    ];
    for lang in ["fr", "en"] {
        let out = recipes()
            .args(["--lang", lang, "list", "--format", "json"])
            .output()
            .unwrap();
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let ids: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        for id in required {
            assert!(ids.contains(&id), "{lang}: {id} missing");
        }
        let audit = list
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == "audit-rootfs")
            .unwrap();
        // The question of which scripts to remove is answered by a program.
        assert!(audit["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["kind"] == "rust"));
    }
}

#[test]
#[ignore = "needs root (namespaces, mounts): run as root with --include-ignored"]
fn every_recipe_of_the_book_passes() {
    crate::require_root();
    assert!(Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("book/fr/book.toml")
        .exists());
    // The default number of jobs, as a reader runs it.
    let text = passes(&["test", "--require-all"]);
    assert!(text.contains("0 failed"), "{text}");
}

/// Runs `recipes ARGS` on the book, which must succeed; returns its report.
fn passes(args: &[&str]) -> String {
    let out = recipes().args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
#[ignore = "needs root (namespaces, mounts): run as root with --include-ignored"]
fn the_pruning_holds_on_three_debian_releases() {
    // The pruning of boot scripts is the conversion's part that depends on
    // the release. The whole conversion (convert-image) is proven on
    // bookworm only: its chain waits on init's utmp records (`who -d`),
    // which trixie's `who` does not list, and it shows bookworm's mount
    // messages word for word (bullseye's have no dmesg hint).
    crate::require_root();
    let out = recipes()
        .args([
            "run",
            "prune-boot-scripts",
            "--fixture",
            "debian-sysv",
            "--fixture",
            "debian-sysv-trixie",
            "--fixture",
            "debian-sysv-bullseye",
            "--require-all",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let finished: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "finished")
        .collect();
    assert_eq!(finished.len(), 3, "{text}");
    for (fixture, release) in [
        ("debian-sysv", "Debian 12"),
        ("debian-sysv-trixie", "Debian 13"),
        ("debian-sysv-bullseye", "Debian 11"),
    ] {
        for e in finished.iter().filter(|e| e["fixture"] == fixture) {
            assert_eq!(e["status"], "passed", "{e}");
            let distro = e["provenance"]["distro"].as_str().unwrap();
            assert!(distro.starts_with(release), "{fixture}: {distro}");
        }
    }
}
