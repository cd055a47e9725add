//! The checks against hosts recorded in `tests/hosts/` (one of them this
//! project's CI machine, recorded with `recipes doctor --describe`) and
//! variations of them: what cannot be reproduced here is still tested.

use super::host::{IdGrant, Probe};
use super::modules::lacks;
use super::*;
use crate::model::KernelFeature;

fn recorded(name: &str) -> HostDescription {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/hosts")
        .join(format!("{name}.json"));
    HostDescription::from_file(&path).unwrap()
}

fn check<'a>(checks: &'a [Check], name: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.check == name)
        .unwrap_or_else(|| panic!("no check `{name}` in {checks:#?}"))
}

/// The checks that are not ok, as `state name`.
fn not_ok(host: &HostDescription) -> Vec<String> {
    run_checks(host)
        .iter()
        .filter(|c| !c.ok())
        .map(|c| format!("{} {}", c.state.as_str(), c.check))
        .collect()
}

#[test]
fn a_debian_host_with_everything_passes_and_its_modules_will_be_loaded() {
    let host = recorded("debian-bookworm");
    let checks = run_checks(&host);
    // Debian's kernel runs AppArmor: a warning (systemd guests fail in
    // the sandbox there), shown before a run; everything else is ok.
    assert_eq!(not_ok(&host), ["warn AppArmor"]);
    assert_eq!(exit_code(&checks), 0);
    let apparmor = check(&checks, "AppArmor");
    assert!(
        apparmor.detail.contains("lxc-start profile"),
        "{apparmor:?}"
    );
    assert!(apparmor.fix.as_deref().unwrap().contains("apparmor=0"));
    let veth = check(&checks, "kernel veth");
    assert!(veth.detail.contains("will be loaded"), "{veth:?}");
    assert_eq!(check(&checks, "kernel fuse").detail, "module loaded");
    assert!(check(&checks, "cgroups")
        .detail
        .contains("pids (v2), memory (v2)"));
    let notices = preflight(&host).unwrap();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(
        notices[0].0.starts_with("AppArmor: AppArmor runs"),
        "{notices:?}"
    );
    let mut without = host.clone();
    without.kernel.apparmor = Some(false);
    assert_eq!(preflight(&without).unwrap(), []);
    without.kernel.apparmor = None;
    assert!(run_checks(&without).iter().all(Check::ok));
}

#[test]
fn a_kernel_without_dummy_says_so_and_skips_what_requires_it() {
    // This project's CI machine: a kernel without loadable modules, whose
    // configuration leaves out CONFIG_DUMMY; cgroups are hybrid.
    let host = recorded("firecracker-hybrid");
    // No recipe of the book needs one: a warning, not a stop.
    assert_eq!(not_ok(&host), ["warn kernel dummy"]);
    let checks = run_checks(&host);
    let dummy = check(&checks, "kernel dummy");
    assert_eq!(dummy.detail, "this kernel has no `dummy` link type");
    assert!(dummy.fix.as_deref().unwrap().contains("CONFIG_DUMMY"));
    assert_eq!(
        check(&checks, "kernel veth").detail,
        "built into the kernel"
    );
    assert!(
        check(&checks, "package kmod")
            .detail
            .starts_with("not needed"),
        "modprobe is useless without loadable modules"
    );
    let cgroups = &check(&checks, "cgroups").detail;
    assert!(
        cgroups.contains("pids (v1, /sys/fs/cgroup/pids), memory (v1, /sys/fs/cgroup/memory)"),
        "{cgroups}"
    );
    assert_eq!(
        lacks(&host.kernel, KernelFeature::Dummy).as_deref(),
        Some("this kernel has no `dummy` link type")
    );
    assert_eq!(lacks(&host.kernel, KernelFeature::NfTables), None);
    // The sandbox itself has all it needs.
    assert_eq!(preflight(&host).unwrap(), []);
}

#[test]
fn a_host_without_user_namespaces_cannot_run_sandboxes() {
    let host = recorded("debian-no-userns");
    assert_eq!(
        not_ok(&host),
        [
            "missing user namespaces",
            "missing id ranges",
            "warn idmapped mounts"
        ]
    );
    let error = preflight(&host).unwrap_err().to_string();
    assert!(
        error.starts_with("this host cannot run recipes in sandboxes"),
        "{error}"
    );
    assert!(
        error.contains("user namespaces: user.max_user_namespaces is 0")
            && error.contains("fix: sysctl -w user.max_user_namespaces=15000")
            && error.contains("No space left on device"),
        "{error}"
    );
    // Debian's switch for unprivileged user namespaces, on its own, only
    // keeps LXC inside from making unprivileged containers.
    let mut host = recorded("debian-bookworm");
    host.kernel.apparmor = Some(false); // one dimension at a time
    host.user_namespaces.unprivileged_userns_clone = Some(0);
    assert_eq!(not_ok(&host), ["warn user namespaces"]);
    let notices = preflight(&host).unwrap();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(
        notices[0].to_string().starts_with(
            "recipes: user namespaces: kernel.unprivileged_userns_clone is 0: the sandbox works"
        ),
        "{notices:?}"
    );
    host.user_namespaces.supported = false;
    assert_eq!(
        check(&run_checks(&host), "user namespaces").fix.as_deref(),
        Some("a kernel built with CONFIG_USER_NS=y")
    );
}

#[test]
fn cgroup_v1_v2_and_hybrid_layouts() {
    // v1 only (no cgroup2 mounted), an old kernel, not Debian.
    let host = recorded("centos7-cgroup-v1");
    let checks = run_checks(&host);
    assert_eq!(
        check(&checks, "cgroups").detail,
        "no cgroup v2 hierarchy is mounted (LXC inside the sandbox needs one)"
    );
    assert!(check(&checks, "idmapped mounts")
        .detail
        .ends_with("Function not implemented (os error 38)"));
    assert_eq!(
        check(&checks, "package lxcfs").fix.as_deref(),
        Some("install what brings lxcfs (on Debian: apt-get install lxcfs)")
    );
    assert_eq!(
        check(&checks, "seccomp").detail,
        "filters (prctl knows SECCOMP_MODE_FILTER)"
    );
    assert_eq!(exit_code(&checks), 2);
    // v2 without the memory controller (turned off at boot).
    let mut host = recorded("debian-bookworm");
    host.kernel.apparmor = Some(false); // one dimension at a time
    host.cgroups.v2_controllers.retain(|c| c != "memory");
    let cgroups = run_checks(&host)
        .into_iter()
        .find(|c| c.check == "cgroups")
        .unwrap();
    assert_eq!(cgroups.state, State::Missing);
    assert!(
        cgroups.detail.starts_with("no `memory` cgroup controller"),
        "{cgroups:?}"
    );
    assert!(cgroups.fix.unwrap().contains("cgroup_enable=memory"));
    // ... which a v1 hierarchy of a hybrid host may offer instead.
    host.cgroups.v1.push(host::V1Hierarchy {
        mount: "/sys/fs/cgroup/memory".into(),
        controllers: vec!["memory".into()],
    });
    assert_eq!(not_ok(&host), Vec::<String>::new());
    // A cgroup file system root may not write (a container's).
    host.cgroups.probe = Probe::Failed {
        error: "cgroup create /sys/fs/cgroup/recipes.sandboxes/1-0: Read-only file system (os error 30)".into(),
    };
    assert!(preflight(&host)
        .unwrap_err()
        .to_string()
        .contains("Read-only file system"));
}

#[test]
fn a_user_that_is_not_root_is_told_to_be() {
    let host = recorded("debian-non-root");
    assert_eq!(
        not_ok(&host),
        [
            "missing root",
            "warn id ranges",
            "warn idmapped mounts",
            "warn cgroups"
        ]
    );
    let checks = run_checks(&host);
    assert_eq!(
        check(&checks, "root").fix.as_deref(),
        Some("run recipes as root (sudo recipes …)")
    );
    assert_eq!(
        check(&checks, "idmapped mounts").detail,
        "not tried: needs root"
    );
    assert_eq!(exit_code(&checks), 2);
}

#[test]
fn disk_space_warns_under_5_gib_and_is_missing_under_1_gib() {
    let host = recorded("debian-little-disk");
    let disk = check(&run_checks(&host), "disk space").clone();
    assert_eq!(disk.state, State::Missing);
    assert_eq!(
        disk.detail,
        "0.6 GiB free in the cache, /root/.cache/recipes: a base needs about 1 GiB"
    );
    // A run is not stopped for it: a recipe on `empty` needs little.
    let notices = preflight(&host).unwrap();
    assert!(
        notices[0]
            .to_string()
            .starts_with("recipes: disk space: 0.6 GiB free"),
        "{notices:?}"
    );
    let mut host = host;
    host.cache.free_bytes = Some(3 << 30);
    assert_eq!(not_ok(&host), ["warn disk space"]);
    assert_eq!(exit_code(&run_checks(&host)), 0, "warnings do not fail");
    host.cache.free_bytes = None;
    assert_eq!(not_ok(&host), ["warn disk space"]);
}

#[test]
fn sandbox_ids_given_to_a_user_are_a_warning() {
    let mut host = recorded("debian-bookworm");
    host.kernel.apparmor = Some(false); // one dimension at a time
    host.id_grants.push(IdGrant {
        file: "/etc/subuid".into(),
        owner: "bob".into(),
        first: 0x6000_0000 + 5,
        count: 65536,
    });
    let checks = run_checks(&host);
    let ids = check(&checks, "id ranges");
    assert_eq!(ids.state, State::Warn);
    assert!(
        ids.detail
            .contains("/etc/subuid gives bob ids 1610612741-1610678276"),
        "{ids:?}"
    );
    // Below the range, alice's usual 100000 65536 shares nothing.
    assert!(!ids.detail.contains("alice"), "{ids:?}");
}

#[test]
fn missing_modules_and_packages_name_their_fix() {
    let mut host = recorded("debian-bookworm");
    host.kernel.apparmor = Some(false); // one dimension at a time
                                        // A kernel upgraded and not rebooted: its modules are gone.
    host.kernel.modules.installed = Some(vec!["veth".into()]);
    host.commands.insert("lxcfs".into(), false);
    let checks = run_checks(&host);
    let overlay = check(&checks, "overlayfs");
    assert_eq!(overlay.state, State::Missing);
    assert!(
        overlay
            .detail
            .ends_with("/lib/modules/6.1.0-28-amd64/ has no overlay.ko"),
        "{overlay:?}"
    );
    assert!(overlay
        .fix
        .as_deref()
        .unwrap()
        .starts_with("reboot into the kernel"));
    assert_eq!(check(&checks, "kernel veth").state, State::Ok);
    let lxcfs = check(&checks, "package lxcfs");
    assert_eq!(
        (lxcfs.detail.as_str(), lxcfs.fix.as_deref()),
        ("lxcfs not found", Some("apt-get install lxcfs"))
    );
    // overlayfs is what every sandbox needs; the rest only some recipes.
    let error = preflight(&host).unwrap_err().to_string();
    assert!(
        error.contains("overlayfs: this kernel has no overlayfs"),
        "{error}"
    );
    assert!(
        !error.contains("lxcfs") && !error.contains("bridge"),
        "{error}"
    );
}

#[test]
fn seccomp_needs_filters_with_the_actions_the_steps_filter_uses() {
    let mut host = recorded("debian-bookworm");
    host.kernel.apparmor = Some(false); // one dimension at a time
    host.seccomp.actions_avail = Some(vec!["kill_process".into(), "allow".into()]);
    assert!(check(&run_checks(&host), "seccomp")
        .detail
        .contains("lack the actions errno"));
    host.seccomp = host::SeccompFacts {
        actions_avail: None,
        filter_mode: Some(false),
    };
    let error = preflight(&host).unwrap_err().to_string();
    assert!(
        error.contains("seccomp: this kernel has no seccomp filters"),
        "{error}"
    );
    assert!(error.contains("CONFIG_SECCOMP_FILTER=y"), "{error}");
}

#[test]
fn checks_print_as_one_line_and_as_json() {
    let host = recorded("firecracker-hybrid");
    let checks = run_checks(&host);
    let dummy = check(&checks, "kernel dummy");
    assert_eq!(
        format!("{dummy:14}"),
        "warn     kernel dummy    this kernel has no `dummy` link type; fix: a kernel built with CONFIG_DUMMY (y or m); until then recipes with requires=dummy are skipped"
    );
    assert_eq!(
        format!("{:14}", check(&checks, "root")),
        "ok       root            running as root"
    );
    let json = serde_json::to_value(&checks[..2]).unwrap();
    assert_eq!(
        json[0],
        serde_json::json!({"check": "root", "ok": true, "state": "ok", "detail": "running as root", "fix": null})
    );
    let json = serde_json::to_value(dummy).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["state"], "warn");
    assert!(json["fix"].is_string());
}

#[test]
fn descriptions_read_back_as_written_and_bad_ones_say_where() {
    let host = recorded("firecracker-hybrid");
    let text = serde_json::to_string(&host).unwrap();
    assert_eq!(
        serde_json::from_str::<HostDescription>(&text).unwrap(),
        host
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("host.json");
    std::fs::write(&path, text.replace("\"euid\"", "\"uid\"")).unwrap();
    let error = HostDescription::from_file(&path).unwrap_err().to_string();
    assert!(
        error.starts_with(&format!("{}: unknown field `uid`", path.display())),
        "{error}"
    );
}

#[test]
fn modprobe_failures_are_told_in_its_words() {
    let error = DoctorError::Modprobe {
        loaded: vec!["veth".into()],
        failed: vec![(
            "dummy".into(),
            ModprobeError::Said(
                "modprobe: FATAL: Module dummy not found in directory /lib/modules/6.1.0-28-amd64"
                    .into(),
            ),
        )],
    };
    assert_eq!(
        error.to_string(),
        "cannot load the kernel module dummy: modprobe: FATAL: Module dummy not found in directory /lib/modules/6.1.0-28-amd64 (loaded: veth); a sandbox cannot load modules: load them as root (modprobe), or recipes that use them fail"
    );
}

/// On the live host: the description reads, and the checks that need
/// nothing but reading come out as the host is.
#[test]
fn the_live_host_is_described() {
    let host = HostDescription::read_live();
    let checks = run_checks(&host);
    assert_eq!(check(&checks, "root").ok(), crate::host::is_root());
    assert_eq!(
        check(&checks, "seccomp").state,
        State::Ok,
        "the sandbox tests install a filter on this kernel"
    );
    if crate::host::is_root() {
        // As root, what a sandbox does was tried for real.
        assert_eq!(host.user_namespaces.sandbox_ids, Probe::Works);
        assert!(
            !matches!(host.cache.idmap, Probe::NotTried { .. }),
            "{:?}",
            host.cache.idmap
        );
    }
}
