//! The checks: each reads a [`HostDescription`] and says `ok`, `warn` or
//! `missing`, with a detail in the kernel's or the system's own words and,
//! when not ok, what to do.

use std::collections::BTreeMap;

use super::host::{host_commands, HostDescription, Probe};
use super::modules::{module_state, ModuleState};
use super::{Check, State};
use crate::model::KernelFeature;
use crate::sandbox::userns;

const GIB: u64 = 1 << 30;
/// Below this, the cache is too small for a base (debootstrap fails).
const DISK_MISSING: u64 = GIB;
/// Below this, a few bases and checkpoints fill it.
const DISK_WARN: u64 = 5 * GIB;

fn ok(check: &str, detail: impl Into<String>) -> Check {
    Check {
        check: check.into(),
        state: State::Ok,
        detail: detail.into(),
        fix: None,
    }
}

fn not_ok(state: State, check: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        check: check.into(),
        state,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

fn warn(check: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    not_ok(State::Warn, check, detail, fix)
}

fn missing(check: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    not_ok(State::Missing, check, detail, fix)
}

/// A check on something tried for real, that was not tried.
fn not_tried(check: &str, why: &str) -> Check {
    warn(
        check,
        format!("not tried: {why}"),
        "run `recipes doctor` as root",
    )
}

/// What every sandbox needs, in order.
pub fn sandbox(host: &HostDescription) -> Vec<Check> {
    vec![
        root(host),
        user_namespaces(host),
        id_ranges(host),
        idmapped_mounts(host),
        overlayfs(host),
        cgroups(host),
        seccomp(host),
        apparmor(host),
    ]
}

/// AppArmor on the host's kernel: LXC inside a sandbox cannot load a
/// container's profile (no securityfs in a user namespace), so the sandbox
/// hides AppArmor from it; its containers then keep the profile Debian gives
/// `lxc-start`, where systemd cannot mount its API file systems (seen on
/// Debian 12 in `bench/cgroup-v2-vm.sh`).
pub fn apparmor(host: &HostDescription) -> Check {
    const NAME: &str = "AppArmor";
    match host.kernel.apparmor {
        Some(true) => warn(
            NAME,
            "AppArmor runs: LXC containers in the sandbox keep the lxc-start profile, where a systemd guest cannot mount its API file systems (\"Failed to mount tmpfs at /dev/shm\"), so the recipes that boot a systemd container fail here; the others run",
            "run those recipes on a machine whose kernel runs without AppArmor (a CI runner, or a VM booted with apparmor=0)",
        ),
        Some(false) => ok(NAME, "not running: LXC in the sandbox runs containers unconfined"),
        None => ok(NAME, "not read (a description recorded without it)"),
    }
}

/// Every check, in order: the sandbox's, the disk, the kernel features of
/// the book, the packages.
pub fn all(host: &HostDescription) -> Vec<Check> {
    let mut checks = sandbox(host);
    checks.push(disk_space(host));
    checks.extend(KernelFeature::ALL.iter().map(|f| kernel_feature(host, *f)));
    checks.extend(packages(host));
    checks
}

pub fn root(host: &HostDescription) -> Check {
    if host.euid == 0 {
        ok("root", "running as root")
    } else {
        missing(
            "root",
            format!(
                "running as uid {}: the sandbox needs root (namespaces, mounts, cgroups); without it only recipes on the `empty` fixture run",
                host.euid
            ),
            "run recipes as root (sudo recipes …)",
        )
    }
}

pub fn user_namespaces(host: &HostDescription) -> Check {
    const NAME: &str = "user namespaces";
    let u = &host.user_namespaces;
    if !u.supported {
        return missing(
            NAME,
            "this kernel has no user namespaces (no /proc/self/ns/user)",
            "a kernel built with CONFIG_USER_NS=y",
        );
    }
    if u.max_user_namespaces == Some(0) {
        return missing(
            NAME,
            "user.max_user_namespaces is 0: not even root can make one",
            "sysctl -w user.max_user_namespaces=15000 (and the same line in /etc/sysctl.d/ to keep it)",
        );
    }
    if u.unprivileged_userns_clone == Some(0) {
        return warn(
            NAME,
            "kernel.unprivileged_userns_clone is 0: the sandbox works (the host's root makes it), but LXC inside cannot make unprivileged containers (a user namespace inside the sandbox's)",
            "sysctl -w kernel.unprivileged_userns_clone=1 (and the same line in /etc/sysctl.d/ to keep it)",
        );
    }
    if u.apparmor_restrict_unprivileged_userns == Some(1) {
        return warn(
            NAME,
            "kernel.apparmor_restrict_unprivileged_userns is 1: the sandbox works, but LXC inside cannot make unprivileged containers",
            "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (and the same line in /etc/sysctl.d/ to keep it)",
        );
    }
    let mut detail = match u.max_user_namespaces {
        Some(n) => format!("user.max_user_namespaces is {n}"),
        None => "supported".to_string(),
    };
    if let Some(n) = u.unprivileged_userns_clone {
        detail.push_str(&format!(", kernel.unprivileged_userns_clone is {n}"));
    }
    ok(NAME, detail)
}

/// The host ids of every slot: `FIRST..FIRST + SLOTS × COUNT`.
fn sandbox_ids() -> (u64, u64) {
    let first = u64::from(userns::FIRST);
    (
        first,
        first + u64::from(userns::SLOTS) * u64::from(userns::COUNT),
    )
}

pub fn id_ranges(host: &HostDescription) -> Check {
    const NAME: &str = "id ranges";
    let (first, end) = sandbox_ids();
    let range = format!("{first}-{} ({first:#x} upwards)", end - 1);
    match &host.user_namespaces.sandbox_ids {
        Probe::Works => {}
        Probe::NotTried { why } => return not_tried(NAME, why),
        Probe::Failed { error } => {
            return missing(
                NAME,
                format!("cannot map a sandbox's ids, host ids {range}: {error}"),
                format!(
                    "run recipes on the host itself, or in a container whose user namespace maps host ids {range}"
                ),
            )
        }
    }
    let shared: Vec<String> = host
        .id_grants
        .iter()
        .filter(|g| g.first < end && g.first + g.count > first)
        .map(|g| {
            format!(
                "{} gives {} ids {}-{}",
                g.file,
                g.owner,
                g.first,
                g.first + g.count - 1
            )
        })
        .collect();
    if !shared.is_empty() {
        return warn(
            NAME,
            format!(
                "the sandboxes use host ids {range}, and {}: what a sandbox leaves belongs to them too",
                shared.join(", ")
            ),
            format!("give them ids outside {range}"),
        );
    }
    ok(
        NAME,
        format!(
            "a sandbox's ids map to host ids {range}, {} slots of {}; no user or group has them",
            userns::SLOTS,
            userns::COUNT
        ),
    )
}

pub fn idmapped_mounts(host: &HostDescription) -> Check {
    const NAME: &str = "idmapped mounts";
    let cache = &host.cache;
    let on = match &cache.filesystem {
        Some(fs) => format!("{} ({fs})", cache.path.display()),
        None => cache.path.display().to_string(),
    };
    match &cache.idmap {
        Probe::Works => ok(
            NAME,
            format!("an idmapped, read-only view of a folder in {on} shows its files with a sandbox's ids"),
        ),
        Probe::NotTried { why } => not_tried(NAME, why),
        Probe::Failed { error } => missing(
            NAME,
            format!("in the cache, {on}: {error}"),
            "idmapped mounts need Linux 5.12 or later and a file system that has them (ext4, xfs, btrfs; tmpfs from Linux 6.3): move the cache to one, e.g. RECIPES_CACHE=/var/cache/recipes",
        ),
    }
}

/// A module's state as a check line; `absent` says what the kernel lacks
/// and `build` how to get a kernel that has it.
fn module_check(
    host: &HostDescription,
    check: &str,
    module: &str,
    absent: &str,
    build: &str,
) -> Check {
    let release = &host.kernel.release;
    match module_state(&host.kernel, module) {
        ModuleState::BuiltIn => ok(check, "built into the kernel"),
        ModuleState::Loaded => ok(check, "module loaded"),
        ModuleState::Available => ok(
            check,
            format!("a module, not loaded yet: it will be loaded before a run (modprobe {module})"),
        ),
        ModuleState::NotInstalled => missing(
            check,
            format!("{absent}: it is a module of this kernel, but /lib/modules/{release}/ has no {module}.ko"),
            "reboot into the kernel whose modules are installed, or install this kernel's modules (apt-get install linux-image-$(uname -r); on Ubuntu also linux-modules-extra-$(uname -r))",
        ),
        ModuleState::Absent => missing(check, absent, build),
        ModuleState::Unknown => warn(
            check,
            format!("not loaded, and neither the kernel's configuration (/proc/config.gz, /boot/config-{release}) nor /lib/modules/{release}/ says whether it has it"),
            format!("try it: modprobe {module}"),
        ),
    }
}

pub fn overlayfs(host: &HostDescription) -> Check {
    module_check(
        host,
        "overlayfs",
        "overlay",
        "this kernel has no overlayfs (the fixtures are overlays on their bases)",
        "a kernel built with CONFIG_OVERLAY_FS (y or m)",
    )
}

/// Where `controller` lives: `pids (v2)`, or `pids (v1, MOUNT)` on a hybrid
/// host; `None` where neither has it.
fn controller_place(c: &super::host::CgroupFacts, controller: &str) -> Option<String> {
    if c.v2_controllers.iter().any(|x| x == controller) {
        return Some(format!("{controller} (v2)"));
    }
    let h =
        c.v1.iter()
            .find(|h| h.controllers.iter().any(|x| x == controller))?;
    Some(format!("{controller} (v1, {})", h.mount.display()))
}

pub fn cgroups(host: &HostDescription) -> Check {
    const NAME: &str = "cgroups";
    let c = &host.cgroups;
    let Some(v2) = &c.v2_mount else {
        return missing(
            NAME,
            "no cgroup v2 hierarchy is mounted (LXC inside the sandbox needs one)",
            "boot with systemd.unified_cgroup_hierarchy=1, or mount one: mount -t cgroup2 none /sys/fs/cgroup/unified",
        );
    };
    let mut from = Vec::new();
    for (controller, build) in [
        ("pids", "a kernel built with CONFIG_CGROUP_PIDS"),
        (
            "memory",
            "boot without cgroup_disable=memory, or with cgroup_enable=memory (Raspberry Pi kernels turn it off), on a kernel built with CONFIG_MEMCG",
        ),
    ] {
        if let Some(place) = controller_place(c, controller) {
            from.push(place);
        } else {
            return missing(
                NAME,
                format!("no `{controller}` cgroup controller, in cgroup v2 ({}) or v1: the sandbox cannot be limited", v2.display()),
                build,
            );
        }
    }
    // The weight is a preference: without `cpu`, sandboxes run unweighted.
    from.push(
        controller_place(c, "cpu")
            .unwrap_or_else(|| "no `cpu` controller: the sandboxes run unweighted".to_string()),
    );
    let layout = format!("cgroup v2 at {}; {}", v2.display(), from.join(", "));
    match &c.probe {
        Probe::Works => ok(NAME, format!("{layout}; a sandbox's cgroups made and removed")),
        Probe::NotTried { why } => warn(
            NAME,
            format!("{layout}; making a sandbox's cgroups not tried: {why}"),
            "run `recipes doctor` as root",
        ),
        Probe::Failed { error } => missing(
            NAME,
            format!("{layout}; cannot make a sandbox's cgroups: {error}"),
            "the runner makes its cgroups under recipes.sandboxes in each hierarchy: the cgroup file systems must be writable by root (not the read-only /sys/fs/cgroup of a container)",
        ),
    }
}

pub fn seccomp(host: &HostDescription) -> Check {
    const NAME: &str = "seccomp";
    let fix = "a kernel built with CONFIG_SECCOMP_FILTER=y";
    let s = &host.seccomp;
    match (&s.actions_avail, s.filter_mode) {
        (Some(actions), _) => {
            let lacking: Vec<&str> = ["allow", "errno"]
                .into_iter()
                .filter(|a| !actions.iter().any(|x| x == a))
                .collect();
            if lacking.is_empty() {
                ok(NAME, format!("filters, with the actions {}", actions.join(" ")))
            } else {
                missing(
                    NAME,
                    format!("the kernel's seccomp filters lack the actions {} (the steps' filter uses them)", lacking.join(" ")),
                    fix,
                )
            }
        }
        (None, Some(true)) => ok(NAME, "filters (prctl knows SECCOMP_MODE_FILTER)"),
        (None, Some(false)) => missing(NAME, "this kernel has no seccomp filters", fix),
        (None, None) => warn(
            NAME,
            "cannot tell: no /proc/sys/kernel/seccomp/actions_avail, and prctl answered neither way",
            fix,
        ),
    }
}

/// `4.2 GiB`.
fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / GIB as f64)
}

pub fn disk_space(host: &HostDescription) -> Check {
    const NAME: &str = "disk space";
    let cache = &host.cache;
    let fix = format!(
        "free some space (`recipes fixture clean --stale` removes old bases and checkpoints), or move the cache to a larger file system: RECIPES_CACHE=/path/to/recipes-cache (now {})",
        cache.path.display()
    );
    let Some(free) = cache.free_bytes else {
        return warn(
            NAME,
            format!("cannot tell the free space in {}", cache.path.display()),
            fix,
        );
    };
    let detail = format!("{} free in the cache, {}", gib(free), cache.path.display());
    if free < DISK_MISSING {
        missing(NAME, format!("{detail}: a base needs about 1 GiB"), fix)
    } else if free < DISK_WARN {
        warn(
            NAME,
            format!("{detail}: a few bases and checkpoints fill it"),
            fix,
        )
    } else {
        ok(NAME, detail)
    }
}

pub fn kernel_feature(host: &HostDescription, feature: KernelFeature) -> Check {
    let name = feature.as_str();
    let check = format!("kernel {name}");
    let config = super::modules::config_symbol(name).unwrap_or("its option");
    let mut result = module_check(
        host,
        &check,
        name,
        &feature.absent(),
        &format!(
            "a kernel built with {config} (y or m); until then recipes with requires={name} are skipped"
        ),
    );
    // /dev/fuse is there when FUSE is (its node may be made before the
    // module is loaded, which opening it then loads).
    if feature == KernelFeature::Fuse && result.state == State::Warn && host.kernel.dev_fuse {
        result = ok(&check, "/dev/fuse exists");
    }
    // No recipe of the book needs a dummy link: without one, only the
    // recipes that say `requires=dummy` are skipped, so the runner works.
    if feature == KernelFeature::Dummy && result.state == State::Missing {
        result.state = State::Warn;
    }
    result
}

/// One check per package, in the order of [`host_commands`].
pub fn packages(host: &HostDescription) -> Vec<Check> {
    let mut by_package: Vec<(&str, Vec<&str>)> = Vec::new();
    for (command, package) in host_commands() {
        match by_package.iter_mut().find(|(p, _)| *p == package) {
            Some((_, commands)) => commands.push(command),
            None => by_package.push((package, vec![command])),
        }
    }
    let found: &BTreeMap<String, bool> = &host.commands;
    by_package
        .into_iter()
        .map(|(package, commands)| {
            let check = format!("package {package}");
            if let Some(why) = commands.iter().find_map(|c| not_needed(host, c)) {
                return ok(&check, format!("not needed: {why}"));
            }
            let absent: Vec<&str> = commands
                .iter()
                .copied()
                .filter(|c| !found.get(*c).copied().unwrap_or(false))
                .collect();
            if absent.is_empty() {
                ok(&check, format!("{} found", commands.join(", ")))
            } else if host.debian {
                missing(
                    &check,
                    format!("{} not found", absent.join(", ")),
                    format!("apt-get install {package}"),
                )
            } else {
                missing(
                    &check,
                    format!("{} not found", absent.join(", ")),
                    format!(
                        "install what brings {} (on Debian: apt-get install {package})",
                        absent.join(", ")
                    ),
                )
            }
        })
        .collect()
}

/// Why a host command is not needed on this host, if it is not.
fn not_needed(host: &HostDescription, command: &str) -> Option<&'static str> {
    (command == "modprobe" && !host.kernel.modules.loadable)
        .then_some("this kernel has no loadable modules")
}
