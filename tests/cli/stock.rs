//! Recipes on a booted stock Debian host (`host=debian-stock`): systemd as
//! its init, `apt-get install lxc` as a reader runs it, its services up, and
//! containers started inside it. They need root, like every sandbox.

use crate::sandbox::finished;
use crate::{require_root, stderr, stdout, Project};

#[test]
#[ignore = "needs root (namespaces, mounts, LXC): run as root with --include-ignored"]
fn a_booted_stock_host_runs_lxc_net_lxcfs_leases_nested_guests_alice_and_autostart() {
    require_root();
    let p = Project::new("stock");
    let out = p
        .recipes()
        .args([
            "run",
            "stock-services",
            "stock-lease",
            "stock-sysv",
            "stock-systemd",
            "stock-alice",
            "stock-boundary",
            "stock-autostart",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let events = finished(&out);
    for (id, event) in &events {
        assert_eq!(event["status"], "passed", "{id}: {event}\n{}", stderr(&out));
        assert_eq!(event["provenance"]["host"], "debian-stock", "{event}");
        let booted = event["booted"].as_str().unwrap();
        assert!(
            booted.starts_with("booted debian-stock (systemd): running in ")
                || booted.starts_with("booted debian-stock (systemd): degraded in "),
            "{booted}"
        );
        // AppArmor's userland came with lxc; this kernel has none.
        if !std::path::Path::new("/sys/module/apparmor").exists() {
            assert!(booted.contains("this kernel has no AppArmor"), "{booted}");
        }
    }
    assert_eq!(events.len(), 7, "{}", stdout(&out));
    // Nothing of a booted host outlives its sandbox.
    crate::assert_runs_left_nothing();
}

#[test]
#[ignore = "needs root (namespaces, mounts, LXC): run as root with --include-ignored"]
fn a_host_that_never_boots_fails_its_recipe_with_what_it_said() {
    require_root();
    let p = Project::new("stock");
    let out = p
        .recipes()
        .args(["run", "stock-no-init", "--format", "json"])
        .output()
        .unwrap();
    // An environment that cannot be made: an error, exit 2.
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let event = &finished(&out)["stock-no-init"];
    assert_eq!(event["status"], "error", "{event}");
    assert_eq!(event["provenance"]["host"], "no-init", "{event}");
    let reason = event["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "the host `no-init` did not boot: `systemctl is-system-running` never answered"
        ),
        "{reason}"
    );
    crate::assert_runs_left_nothing();
}

#[test]
#[ignore = "needs root (namespaces, mounts, LXC): run as root with --include-ignored"]
fn host_on_the_command_line_runs_any_recipe_in_the_booted_host() {
    require_root();
    let p = Project::new("stock");
    let plain = p
        .recipes()
        .args(["run", "where-am-i", "--format", "json"])
        .output()
        .unwrap();
    let event = &finished(&plain)["where-am-i"];
    assert_eq!(
        event["status"], "failed",
        "the sandbox's PID 1 is not systemd: {event}"
    );
    assert_eq!(event["provenance"]["host"], "none");
    let booted = p
        .recipes()
        .args([
            "run",
            "where-am-i",
            "--host",
            "debian-stock",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let event = &finished(&booted)["where-am-i"];
    assert_eq!(event["status"], "passed", "{event}");
    assert_eq!(event["provenance"]["host"], "debian-stock");
}

#[test]
fn a_host_that_does_not_boot_or_does_not_exist_is_a_located_check_error() {
    let p = Project::new("stock");
    for lang in ["fr", "en"] {
        let page = p.path().join(format!("book/{lang}/src/stock.md"));
        let text = std::fs::read_to_string(&page).unwrap();
        let text = text
            .replace(
                "recipe=stock-no-init host=no-init",
                "recipe=stock-no-init host=busybox",
            )
            .replace(
                "```console recipe=where-am-i",
                "```console recipe=where-am-i host=nowhere",
            );
        std::fs::write(&page, text).unwrap();
    }
    let out = p.recipes().arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out) + &stderr(&out);
    assert!(
        text.contains("stock.md:155: `host=busybox` names a fixture that does not boot (give it `boot = \"systemd\"`); the booted hosts: debian-stock, no-init"),
        "{text}"
    );
    assert!(
        text.contains("`host=nowhere` names no fixture; the booted hosts: debian-stock, no-init"),
        "{text}"
    );
}
