//! `recipes doctor`: the checks as lines or JSON, on this host or on one
//! recorded in `tests/hosts/`, the exit code, and `requires=` naming a
//! kernel feature.

use std::path::{Path, PathBuf};

use crate::{require_root, stderr, stdout, Project};

fn recorded(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/hosts")
        .join(format!("{name}.json"))
}

/// Runs `doctor --format json` with `args`; the checks and the exit code,
/// after asserting the shape every check has.
fn doctor_json(args: &[&str]) -> (Vec<serde_json::Value>, Option<i32>) {
    let out = Project::new("passing")
        .recipes()
        .args(["doctor", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    let checks: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
    assert!(!checks.is_empty());
    for check in &checks {
        let object = check.as_object().unwrap();
        let keys: Vec<&str> = object.keys().map(String::as_str).collect();
        assert_eq!(keys, ["check", "detail", "fix", "ok", "state"], "{check}");
        assert!(check["check"].is_string() && check["detail"].is_string());
        let ok = check["ok"].as_bool().unwrap();
        assert_eq!(ok, check["state"] == "ok", "{check}");
        assert!(
            ["ok", "warn", "missing"].contains(&check["state"].as_str().unwrap()),
            "{check}"
        );
        assert_eq!(
            check["fix"].is_null(),
            ok,
            "a fix exactly when not ok: {check}"
        );
    }
    let missing = checks.iter().any(|c| c["state"] == "missing");
    assert_eq!(
        out.status.code(),
        Some(if missing { 2 } else { 0 }),
        "exit 2 exactly when something is missing"
    );
    (checks, out.status.code())
}

fn find<'a>(checks: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    checks
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no check `{name}`"))
}

#[test]
fn json_on_this_host_is_a_list_of_checks() {
    let (checks, _) = doctor_json(&[]);
    let names: Vec<&str> = checks
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    for name in [
        "root",
        "user namespaces",
        "id ranges",
        "idmapped mounts",
        "overlayfs",
        "cgroups",
        "seccomp",
        "AppArmor",
        "disk space",
        "kernel veth",
        "kernel bridge",
        "kernel dummy",
        "kernel nf_tables",
        "kernel fuse",
        "package lxc",
        "package debootstrap",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    assert_eq!(
        find(&checks, "root")["ok"],
        nix::unistd::geteuid().is_root()
    );
}

#[test]
#[ignore = "needs root"]
fn as_root_this_host_has_what_every_sandbox_needs() {
    require_root();
    // CI runs the sandbox's tests here: what they need was tried for real.
    let (checks, _) = doctor_json(&[]);
    for name in [
        "root",
        "user namespaces",
        "id ranges",
        "idmapped mounts",
        "overlayfs",
        "cgroups",
        "seccomp",
    ] {
        let check = find(&checks, name);
        assert_eq!(check["state"], "ok", "{check}");
    }
    assert!(find(&checks, "idmapped mounts")["detail"]
        .as_str()
        .unwrap()
        .contains("shows its files with a sandbox's ids"));
}

#[test]
fn a_recorded_host_is_checked_instead_of_this_one() {
    let host = recorded("firecracker-hybrid");
    let (checks, code) = doctor_json(&["--host", host.to_str().unwrap()]);
    // Only requires=dummy recipes need a dummy link: a warning.
    assert_eq!(code, Some(0));
    let dummy = find(&checks, "kernel dummy");
    assert_eq!(dummy["state"], "warn");
    assert_eq!(dummy["detail"], "this kernel has no `dummy` link type");
    let bookworm = recorded("debian-bookworm");
    let (checks, code) = doctor_json(&["--host", bookworm.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    assert!(find(&checks, "kernel dummy")["detail"]
        .as_str()
        .unwrap()
        .contains("will be loaded"));
    // Debian's kernel runs AppArmor: said, not a stop.
    let apparmor = find(&checks, "AppArmor");
    assert_eq!(apparmor["state"], "warn", "{apparmor}");
    assert!(apparmor["detail"]
        .as_str()
        .unwrap()
        .contains("a systemd guest cannot mount its API file systems"));
    let (checks, _) = doctor_json(&["--host", host.to_str().unwrap()]);
    assert_eq!(find(&checks, "AppArmor")["state"], "ok");
}

#[test]
fn human_output_is_one_line_per_check_with_its_fix() {
    let host = recorded("debian-no-userns");
    let out = Project::new("passing")
        .recipes()
        .args(["doctor", "--host", host.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("missing  user namespaces ")
                && l.contains("user.max_user_namespaces is 0")
                && l.contains("; fix: sysctl -w user.max_user_namespaces=15000")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("ok       seccomp ")),
        "{text}"
    );
    assert!(
        text.ends_with("2 missing, 1 warning: fix them, then run `recipes doctor` again\n"),
        "{text}"
    );
}

#[test]
fn describe_prints_a_description_that_reads_back() {
    let p = Project::new("passing");
    let out = p.recipes().args(["doctor", "--describe"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let file = p.path().join("host.json");
    std::fs::write(&file, out.stdout).unwrap();
    let live = p
        .recipes()
        .args(["doctor", "--format", "json"])
        .output()
        .unwrap();
    let again = p
        .recipes()
        .args(["doctor", "--format", "json", "--host"])
        .arg(&file)
        .output()
        .unwrap();
    let states = |out: &std::process::Output| -> Vec<(String, String)> {
        let checks: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        checks
            .iter()
            .map(|c| (c["check"].to_string(), c["state"].to_string()))
            .collect()
    };
    assert_eq!(states(&live), states(&again));
}

#[test]
fn a_bad_description_is_an_error_in_plain_words() {
    let p = Project::new("passing");
    let file = p.path().join("host.json");
    std::fs::write(&file, "{\"euid\": 0}").unwrap();
    let out = p
        .recipes()
        .args(["doctor", "--host"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "error: {}: missing field `debian` at line 1 column 11\n",
            file.display()
        )
    );
}

#[test]
fn a_recipe_requiring_a_kernel_feature_is_skipped_where_the_kernel_lacks_it() {
    let p = Project::new("passing");
    std::fs::write(
        p.path().join("book/fr/src/page.md"),
        "# K\n\n```sh recipe=needs-dummy requires=dummy\ntrue\n```\n",
    )
    .unwrap();
    // What the doctor says of this kernel decides what the run does.
    let (checks, _) = doctor_json(&[]);
    let dummy = find(&checks, "kernel dummy");
    let out = p
        .recipes()
        .args(["run", "needs-dummy", "--format", "json"])
        .output()
        .unwrap();
    let events: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let finished = events
        .iter()
        .find(|e| e["event"] == "finished")
        .unwrap_or_else(|| panic!("{events:?} {}", stderr(&out)));
    if dummy["detail"] == "this kernel has no `dummy` link type" {
        assert_eq!(finished["status"], "skipped", "{finished}");
        assert_eq!(
            finished["reason"],
            "requires dummy: this kernel has no `dummy` link type"
        );
        assert_eq!(out.status.code(), Some(0));
    } else {
        assert_ne!(finished["status"], "skipped", "{finished} {dummy}");
    }
}
