//! The sandbox and fixtures, for real: these tests need root (namespaces,
//! mounts, debootstrap, LXC), so they are ignored unless
//! `--include-ignored` is given; CI runs them all as root. Each attack runs
//! as a recipe and the host is checked afterwards.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use crate::{assert_gone, processes, require_root, stdout, Project};

/// What a recipe could change on the host.
#[derive(Debug, PartialEq, Eq)]
struct HostState {
    hostname: String,
    links: Vec<String>,
    mounts: Vec<String>,
    nft: String,
    iptables: String,
    /// Kernel settings a hostile recipe would aim at.
    sysctls: Vec<String>,
    /// Host folders the sandbox must not create.
    lxc_dirs: Vec<bool>,
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn host_state() -> HostState {
    let mut links: Vec<String> = run("ip", &["-o", "link"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1).map(str::to_string))
        .collect();
    links.sort();
    // debootstrap, run by other tests building bases in the test cache,
    // mounts /proc in its target for a while: not the sandbox's doing.
    let cache = crate::cache_dir().display().to_string();
    let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| !m.starts_with(&cache))
        .collect();
    mounts.sort();
    HostState {
        hostname: nix::unistd::gethostname()
            .unwrap()
            .to_string_lossy()
            .into_owned(),
        links,
        mounts,
        nft: run("nft", &["list", "ruleset"]),
        iptables: run("iptables-save", &[])
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n"),
        sysctls: [
            "kernel/core_pattern",
            "kernel/printk",
            "kernel/modprobe",
            "net/ipv4/ip_forward",
        ]
        .iter()
        .map(|k| std::fs::read_to_string(Path::new("/proc/sys").join(k)).unwrap_or_default())
        .collect(),
        lxc_dirs: ["/var/lib/lxc", "/var/cache/lxc", "/var/lib/lxcfs"]
            .iter()
            .map(|d| Path::new(d).exists())
            .collect(),
    }
}

/// Fingerprints of every file under `dir`: path, size, and the change and
/// modification times in nanoseconds (a write, a chmod or a reset of the
/// modification time all move the change time, which nothing can set back).
fn fingerprint(dir: &Path) -> Vec<(String, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut all: Vec<(String, u64, i64, i64)> = walk(dir)
        .into_iter()
        // Bases and programs other tests are building right now (`.NAME`
        // folders, renamed into place when complete) are not the cache's yet.
        .filter(|path| {
            !path
                .strip_prefix(dir)
                .ok()
                .and_then(|rel| rel.components().next())
                .is_some_and(|first| first.as_os_str().to_string_lossy().starts_with('.'))
        })
        .filter_map(|path| {
            let meta = std::fs::symlink_metadata(&path).ok()?;
            Some((
                path.display().to_string(),
                meta.len(),
                meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
                meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ))
        })
        .collect();
    all.sort();
    all
}

/// Every path under `dir`, not crossing into other mounts.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let device = std::fs::metadata(dir).map(|m| m.dev()).unwrap_or(0);
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let same = entry.metadata().is_ok_and(|m| m.dev() == device);
        if same && entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(walk(&path));
        }
        found.push(path);
    }
    found
}

fn wait_for(needle: &str) {
    let start = Instant::now();
    while processes(needle).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{needle} never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn(p: &Project, args: &[&str]) -> std::process::Child {
    Command::new(assert_cmd::cargo::cargo_bin("recipes"))
        .args(args)
        .current_dir(p.path())
        .env("RECIPES_CACHE", crate::cache_dir())
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap()
}

#[test]
#[ignore = "needs root (namespaces, mounts): run as root with --include-ignored"]
fn hostile_recipes_leave_the_host_as_it_was() {
    require_root();
    let p = Project::new("sandbox");
    let before = host_state();
    let out = p
        .recipes()
        .args([
            "run",
            "hostile-files",
            "hostile-host",
            "hostile-kernel",
            "escape-mounts",
            "escape-kernel",
            "escape-chroot",
            "escape-rust",
            "escape-net-host",
            "escape-fds",
            "confined",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(host_state(), before);
    assert!(!Path::new("/etc/recipes-was-here").exists());
    assert!(!Path::new("/etc/poison").exists());
    assert!(!Path::new("/tmp/x").exists());
    // The fixture's setup script ran chrooted in a sandbox.
    assert!(!Path::new("/tmp/escaped-setup").exists());
    assert!(!Path::new("/tmp/written-by-setup").exists());
    assert!(Path::new("/etc/hostname").exists());
    assert_gone("sleep 98770");
    assert_gone("sleep 987720");
}

#[test]
#[ignore = "needs root (namespaces, mounts): run as root with --include-ignored"]
fn wrecking_a_fixture_or_the_cache_leaves_the_bases_and_programs_intact() {
    require_root();
    let p = Project::new("sandbox");
    // A compiled program and a built base exist before the attack.
    p.recipes()
        .args(["run", "escape-rust", "intact"])
        .assert()
        .success();
    let cache = crate::cache_dir();
    let rust = fingerprint(&cache.join("rust"));
    let bases = fingerprint(&cache.join("bases"));
    assert!(!rust.is_empty() && !bases.is_empty());
    let out = p
        .recipes()
        .args(["run", "wreck", "escape-cache"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stdout(&out));
    // Every program and base file is as it was (other tests may add theirs
    // to the shared cache meanwhile).
    let after_rust = fingerprint(&cache.join("rust"));
    let after_bases = fingerprint(&cache.join("bases"));
    for file in &rust {
        assert!(after_rust.contains(file), "changed: {file:?}");
    }
    for file in &bases {
        assert!(after_bases.contains(file), "changed: {file:?}");
    }
    // A later run sees the pristine base and program.
    p.recipes()
        .args(["run", "intact", "escape-rust"])
        .assert()
        .success();
}

#[test]
#[ignore = "needs root (namespaces, mounts): run as root with --include-ignored"]
fn a_recipe_that_exhausts_its_limits_fails_alone_and_says_which() {
    require_root();
    let p = Project::new("sandbox");
    let out = p
        .recipes()
        .args(["run", "limit-pids", "limit-memory", "limit-after"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("the sandbox reached its process limit (64, key `pids=`)"),
        "{text}"
    );
    assert!(
        text.contains("the sandbox reached its memory limit (64M, key `memory=`)"),
        "{text}"
    );
    assert!(text.contains("PASS limit-after"), "{text}");
    assert!(text.contains("2 failed"), "{text}");
    assert_gone("sleep 987730");
}

#[test]
#[ignore = "needs root (namespaces, mounts): run as root with --include-ignored"]
fn a_steps_processes_are_in_the_sandboxs_cgroups() {
    require_root();
    let p = Project::new("sandbox");
    // The step checks from inside that it sits at the root of its cgroup
    // namespace (PID 1's cgroups, every hierarchy), then waits in a sleep
    // that the host inspects and ends (a number no other test waits for).
    let mut run = Command::new(assert_cmd::cargo::cargo_bin("recipes"))
        .args(["run", "in-cgroups"])
        .current_dir(p.path())
        .env("RECIPES_CACHE", crate::cache_dir())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    // The sleep itself, not `__enter` or the shell, whose command lines
    // hold it too.
    let sleep = loop {
        let found = processes("sleep 986650").into_iter().find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
        });
        if let Some(pid) = found {
            break pid;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = run.kill();
            panic!("no step started");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let cgroups = std::fs::read_to_string(format!("/proc/{sleep}/cgroup")).unwrap();
    // Every hierarchy that limits the sandbox (pids, memory: cgroup v2 or
    // the v1 ones of a hybrid host) and the v2 one hold the step's
    // processes in the sandbox's folders.
    let limiting: Vec<&str> = cgroups
        .lines()
        .filter(|l| l.starts_with("0::") || l.contains(":pids:") || l.contains(":memory:"))
        .collect();
    let outside: Vec<&&str> = limiting
        .iter()
        .filter(|l| !l.contains("/recipes.sandboxes/"))
        .collect();
    // Where the host has a v1 `cpu` controller (a hybrid host), the
    // sandbox is one scheduling entity of its own there too.
    let cpu_v1 = cgroups.lines().find(|l| {
        l.split(':')
            .nth(1)
            .is_some_and(|c| c.split(',').any(|c| c == "cpu"))
    });
    // Ended before asserting, so that a failure leaves nothing running.
    kill(Pid::from_raw(sleep), Signal::SIGTERM).unwrap();
    let out = run.wait_with_output().unwrap();
    assert!(!limiting.is_empty(), "{cgroups}");
    assert!(
        outside.is_empty(),
        "outside the sandbox's cgroups: {outside:?}"
    );
    if let Some(cpu) = cpu_v1 {
        assert!(cpu.contains("/recipes.sandboxes/"), "{cgroups}");
    }
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("PASS in-cgroups"), "{text}");
}

#[test]
#[ignore = "needs root (namespaces, mounts): run as root with --include-ignored"]
fn a_timeout_gives_the_step_its_grace_period() {
    require_root();
    let p = Project::new("sandbox");
    let out = p.recipes().args(["run", "grace"]).output().unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("TIME grace"), "{text}");
    // The step's TERM trap ran before anything was killed.
    assert!(text.contains("trapped"), "{text}");
    assert_gone("sleep 987740");
}

#[test]
#[ignore = "needs root (namespaces, mounts): run as root with --include-ignored"]
fn the_sandbox_needs_nothing_of_lxc_on_the_host_and_creates_nothing() {
    require_root();
    let p = Project::new("sandbox");
    // A host where lxc was never installed: /var/lib and /var/cache are
    // hidden behind empty folders, in a mount namespace of the test's own.
    // A chain kept as a checkpoint with files in /var/lib/lxc and a bridge,
    // then brought back, works there too.
    let script = "mount -t tmpfs none /var/lib && mount -t tmpfs none /var/cache \
        && \"$0\" run intact fresh-host lxc-free-sysv \
        && \"$0\" run chain-net-user && \"$0\" run chain-net-user \
        && echo left: $(find /var/lib /var/cache -mindepth 1 | wc -l)";
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .arg(assert_cmd::cargo::cargo_bin("recipes"))
        .current_dir(p.path())
        .env("RECIPES_CACHE", crate::cache_dir())
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("3 passed"), "{text}");
    assert!(
        text.contains("started from the checkpoint of `chain-net`, its network made again"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("left: 0"), "{text}");
}

/// Runs `recipes ARGS` on a copy of the host whose folders are in `state`
/// (see `fake-host.sh`), which says whether the run changed them.
fn on_fake_host(p: &Project, state: &str, args: &[&str]) -> std::process::Output {
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/fake-host.sh"))
        .args([state, "--"])
        .arg(assert_cmd::cargo::cargo_bin("recipes"))
        .args(args)
        .current_dir(p.path())
        .env("RECIPES_CACHE", crate::cache_dir())
        .output()
        .unwrap()
}

/// Every state of the host's folders the issue names: each absent alone,
/// any two absent, all absent, LXC's folder a link to another disk, and
/// one that already holds the host's own `web1`.
fn host_states() -> Vec<String> {
    let folders = ["no-lxc", "no-cache-lxc", "no-lxcfs", "no-log", "no-root"];
    let mut states = vec!["as-is".to_string()];
    states.extend(folders.iter().map(|f| f.to_string()));
    for (i, a) in folders.iter().enumerate() {
        for b in &folders[i + 1..] {
            states.push(format!("{a},{b}"));
        }
    }
    states.push(folders.join(","));
    states.extend(
        [
            "lxc-link",
            "host-web1",
            "lxc-link,host-web1",
            "host-web1,no-lxcfs",
        ]
        .map(String::from),
    );
    states
}

#[test]
#[ignore = "needs root (namespaces, mounts): run as root with --include-ignored"]
fn any_state_of_the_hosts_folders_gives_the_same_sandbox_and_is_left_as_it_was() {
    require_root();
    let p = Project::new("sandbox");
    let before = host_state();
    for state in host_states() {
        let out = on_fake_host(
            &p,
            &state,
            &["run", "host-view", "host-view-busybox", "host-view-sysv"],
        );
        let text = stdout(&out);
        assert!(
            out.status.success(),
            "state {state}:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("3 passed"), "state {state}:\n{text}");
        assert!(
            text.contains("fake host unchanged"),
            "state {state}:\n{text}"
        );
    }
    assert_eq!(host_state(), before);
}

#[test]
#[ignore = "needs root (namespaces, mounts, LXC): run as root with --include-ignored"]
fn a_container_boots_where_the_hosts_lxc_folder_is_a_link_holding_its_own_web1() {
    require_root();
    let p = Project::new("sandbox");
    let out = on_fake_host(&p, "lxc-link,host-web1,no-lxcfs", &["run", "lxc-boot"]);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("fake host unchanged"), "{text}");
    crate::assert_runs_left_nothing();
}

#[test]
#[ignore = "needs root (namespaces, mounts): run as root with --include-ignored"]
fn chroot_steps_and_at_paths_see_the_fixture() {
    require_root();
    let p = Project::new("sandbox");
    let out = p
        .recipes()
        .args(["run", "chroot-step", "at-path"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stdout(&out));
}

#[test]
#[ignore = "needs root (namespaces, mounts): run as root with --include-ignored"]
fn a_debian_sysv_container_boots_to_its_runlevel_and_is_attached() {
    require_root();
    let p = Project::new("sandbox");
    let before = host_state();
    let out = p
        .recipes()
        .args(["run", "lxc-boot", "lxcfs-inside"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(host_state(), before);
    crate::assert_runs_left_nothing();
}

#[test]
#[ignore = "needs root (namespaces, mounts): run as root with --include-ignored"]
fn ctrl_c_leaves_nothing_behind() {
    require_root();
    let p = Project::new("sandbox");
    let before = host_state();
    let mut child = spawn(&p, &["run", "long", "hostile-host"]);
    wait_for("sleep 987710");
    killpg(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let start = Instant::now();
    let status = child.wait().unwrap();
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(status.code(), Some(130));
    assert_gone("sleep 9877");
    assert_eq!(host_state(), before);
}

#[test]
#[ignore = "needs root (namespaces, mounts): run as root with --include-ignored"]
fn sigkill_of_the_runner_takes_its_sandboxes_and_the_next_run_cleans_up() {
    require_root();
    let p = Project::new("sandbox");
    let mut child = spawn(&p, &["run", "long"]);
    wait_for("sleep 987710");
    let pid = child.id();
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    assert_gone("sleep 987710");
    p.recipes().args(["run", "intact"]).assert().success();
    let cgroup2 = recipes::sandbox::cgroup::cgroup2_mount().expect("cgroup v2 is mounted");
    let stale = std::fs::read_dir(cgroup2.join("recipes.sandboxes"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{pid}-"))
        });
    assert!(!stale, "the killed runner's cgroup is still there");
}

#[test]
#[ignore = "needs root (namespaces, mounts): run as root with --include-ignored"]
fn an_interrupted_base_build_is_never_used() {
    require_root();
    let p = Project::new("sandbox");
    let cache = p.path().join("cache");
    let build = || {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("recipes"));
        cmd.args(["fixture", "build", "slow-busybox"])
            .current_dir(p.path())
            .env("RECIPES_CACHE", &cache);
        cmd
    };
    let mut child = build()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let bases = cache.join("bases");
    let start = Instant::now();
    let partial = loop {
        let found = std::fs::read_dir(&bases)
            .into_iter()
            .flatten()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().ends_with(".partial"));
        if let Some(entry) = found {
            break entry.path();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no build started"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(partial.exists());
    let list = Command::new(assert_cmd::cargo::cargo_bin("recipes"))
        .args(["fixture", "list"])
        .current_dir(p.path())
        .env("RECIPES_CACHE", &cache)
        .output()
        .unwrap();
    let line = stdout(&list)
        .lines()
        .find(|l| l.starts_with("slow-busybox"))
        .unwrap()
        .to_string();
    assert!(line.contains("not built"), "{line}");
    // Two builds at once: one builds, the other waits for it; both succeed.
    let first = build().output().unwrap();
    let second = build().output().unwrap();
    assert!(first.status.success() && second.status.success());
    let rootfs = stdout(&first)
        .trim()
        .split(": ")
        .nth(1)
        .unwrap()
        .to_string();
    assert!(Path::new(&rootfs).join("built-completely").exists());
    assert!(!partial.exists(), "the half-made base was not removed");
}

#[test]
#[ignore = "needs root (namespaces, mounts): run as root with --include-ignored"]
fn keep_prints_where_the_fixture_is() {
    require_root();
    let p = Project::new("sandbox");
    let out = p
        .recipes()
        .args(["run", "wreck", "--keep"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = stdout(&out);
    let kept = text
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("fixture kept at ")?
                .split(" (")
                .next()
        })
        .unwrap_or_else(|| panic!("{text}"))
        .to_string();
    // The overlay's upper layer records what the recipe deleted.
    assert!(Path::new(&kept).join("upper").is_dir(), "{kept}");
    std::fs::remove_dir_all(&kept).unwrap();
}

#[test]
#[ignore = "needs root (namespaces, mounts): run as root with --include-ignored"]
fn without_root_real_fixtures_say_they_need_root() {
    require_root();
    let p = Project::new("sandbox");
    std::fs::set_permissions(
        p.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(assert_cmd::cargo::cargo_bin("recipes"))
        .args(["run", "intact"])
        .current_dir(p.path())
        .env("RECIPES_CACHE", p.path().join("cache"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stdout(&out).contains("needs root"), "{}", stdout(&out));
}

#[test]
#[ignore = "needs root (namespaces, mounts): run as root with --include-ignored"]
fn net_host_shares_the_host_network_and_nothing_else() {
    require_root();
    let p = Project::new("sandbox");
    let out = p
        .recipes()
        .args(["run", "net-host", "hostile-kernel", "-v"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stdout(&out));
    let text = stdout(&out);
    // Every host interface shows up in the net=host recipe...
    for link in std::fs::read_dir("/sys/class/net").unwrap().flatten() {
        let name = link.file_name().to_string_lossy().into_owned();
        assert!(
            text.contains(&format!("    {name}\n")),
            "{name} missing:\n{text}"
        );
    }
    // ...while the others still see only their own loopback.
    assert!(text.contains("$ ls /sys/class/net\n    lo\n"), "{text}");
}

#[test]
#[ignore = "needs root (namespaces, mounts): run as root with --include-ignored"]
fn ctrl_c_interrupts_a_base_build_and_nothing_half_made_stays() {
    require_root();
    let p = Project::new("sandbox");
    let cache = p.path().join("cache");
    let child = Command::new(assert_cmd::cargo::cargo_bin("recipes"))
        .args(["fixture", "build", "endless-busybox"])
        .current_dir(p.path())
        .env("RECIPES_CACHE", &cache)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    // The setup script runs in a sandbox of its own.
    wait_for("sleep 987750");
    killpg(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left: Vec<String> = std::fs::read_dir(cache.join("bases"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("endless-busybox") && !n.ends_with(".lock"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_gone("sleep 987750");
}

/// The `finished` event of `id`, which must have passed.
fn passed(
    events: &std::collections::BTreeMap<String, serde_json::Value>,
    id: &str,
) -> serde_json::Value {
    let event = &events[id];
    assert_eq!(event["status"], "passed", "{event}");
    event.clone()
}

/// The `finished` events of a JSON run, by recipe id.
pub(crate) fn finished(
    out: &std::process::Output,
) -> std::collections::BTreeMap<String, serde_json::Value> {
    stdout(out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "finished")
        .map(|e| (e["id"].as_str().unwrap_or_default().to_string(), e))
        .collect()
}

#[test]
#[ignore = "needs root (namespaces, mounts): run as root with --include-ignored"]
fn a_prerequisite_chain_is_kept_as_a_checkpoint_and_reused_until_it_changes() {
    require_root();
    let p = Project::new("sandbox");
    let cache = p.path().join("cache");
    let run = |args: &[&str]| {
        Command::new(assert_cmd::cargo::cargo_bin("recipes"))
            .args(["run", "--format", "json"])
            .args(args)
            .current_dir(p.path())
            .env("RECIPES_CACHE", &cache)
            .output()
            .unwrap()
    };
    let first = finished(&run(&["chain-user"]));
    let event = &passed(&first, "chain-user");
    assert_eq!(event["steps_run"], 2, "{event}");
    assert_eq!(event["checkpoint"], "kept a checkpoint of `chain-base`");
    // The next run starts from the layer: the prerequisite does not run,
    // and its changes (a new file, a deleted one, owners) are all there.
    let second = finished(&run(&["chain-user"]));
    let event = &passed(&second, "chain-user");
    assert_eq!(event["steps_run"], 1, "{event}");
    assert_eq!(
        event["checkpoint"],
        "started from the checkpoint of `chain-base`"
    );
    // A changed shell helper (recipes/lib) never reuses the old layer.
    let lib = p.path().join("recipes/lib");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::write(lib.join("helper"), "#!/bin/sh\n").unwrap();
    let after_lib = finished(&run(&["chain-user"]));
    assert_eq!(after_lib["chain-user"]["steps_run"], 2);
    assert_eq!(
        after_lib["chain-user"]["checkpoint"],
        "kept a checkpoint of `chain-base`"
    );
    // --no-checkpoint replays the chain.
    let replayed = finished(&run(&["chain-user", "--no-checkpoint"]));
    assert_eq!(replayed["chain-user"]["steps_run"], 2);
    assert!(replayed["chain-user"]["checkpoint"].is_null());
    // A chain that leaves processes running is replayed, and says why.
    let live = finished(&run(&["chain-live-user"]));
    assert_eq!(live["chain-live-user"]["status"], "passed");
    let why = live["chain-live-user"]["checkpoint"]
        .as_str()
        .unwrap_or_default();
    assert!(
        why.starts_with("`chain-live` is replayed: it leaves processes running ("),
        "{why}"
    );
    assert_gone("sleep 987760");
    // A chain that leaves a bridge, nftables rules, forwarding and files
    // outside the fixture is kept with them, and they are all back.
    let net = passed(&finished(&run(&["chain-net-user"])), "chain-net-user");
    assert_eq!(
        net["checkpoint"],
        "kept a checkpoint of `chain-net`, with its network: br0, nftables rules, forwarding"
    );
    let net = passed(&finished(&run(&["chain-net-user"])), "chain-net-user");
    assert_eq!(net["steps_run"], 1);
    assert_eq!(
        net["checkpoint"],
        "started from the checkpoint of `chain-net`, its network made again: br0, nftables rules, forwarding"
    );
    // A chain that swaps /var for a link to the host's files: the host's
    // root never follows it (the files are archived inside the sandbox),
    // and the unmount alone makes it replay.
    let secret = std::path::Path::new("/tmp/recipes-escape-test/log");
    std::fs::create_dir_all(secret).unwrap();
    std::fs::write(secret.join("secret"), "host secret\n").unwrap();
    let escape = finished(&run(&["chain-escape-user"]));
    let _ = std::fs::remove_dir_all("/tmp/recipes-escape-test");
    let escape = passed(&escape, "chain-escape-user");
    assert_eq!(
        escape["checkpoint"],
        "`chain-escape` is replayed: it leaves its mounts changed"
    );
    // A checkpoint that cannot be brought back is removed, and the chain
    // replayed (here its network names a kind of link no kernel has).
    let layer = std::fs::read_dir(cache.join("layers"))
        .unwrap()
        .flatten()
        .map(|l| l.path())
        .find(|l| std::fs::read_to_string(l.join("network.json")).is_ok_and(|n| n.contains("br0")))
        .unwrap();
    let json = std::fs::read_to_string(layer.join("network.json")).unwrap();
    std::fs::write(
        layer.join("network.json"),
        json.replace("type bridge", "type no-such-kind"),
    )
    .unwrap();
    let broken = finished(&run(&["chain-net-user"]));
    let event = &passed(&broken, "chain-net-user");
    assert_eq!(event["steps_run"], 2, "{event}");
    let why = event["checkpoint"].as_str().unwrap_or_default();
    assert!(
        why.starts_with("`chain-net` is replayed: its checkpoint could not be brought back (")
            && why.ends_with("), so it was removed"),
        "{why}"
    );
    assert!(!layer.exists());
    let kept = finished(&run(&["chain-net-user"]));
    assert_eq!(
        kept["chain-net-user"]["checkpoint"],
        "kept a checkpoint of `chain-net`, with its network: br0, nftables rules, forwarding"
    );
    // The files outside the fixture are archived; /tmp is not kept.
    let archived: String = std::fs::read_dir(cache.join("layers"))
        .unwrap()
        .flatten()
        .map(|layer| layer.path().join("files.tar"))
        .filter(|tar| tar.is_file())
        .map(|tar| stdout(&Command::new("tar").arg("-tf").arg(&tar).output().unwrap()))
        .collect();
    assert!(archived.contains("var/lib/lxc/c1/config\n"), "{archived}");
    assert!(archived.contains("root/note\n"), "{archived}");
    assert!(!archived.contains("not-kept"), "{archived}");
    // A veth pair cannot be made again from a description: replayed.
    let veth = finished(&run(&["chain-veth-user"]));
    assert_eq!(veth["chain-veth-user"]["status"], "passed");
    assert_eq!(
        veth["chain-veth-user"]["checkpoint"],
        "`chain-veth` is replayed: it leaves network state a checkpoint cannot make again (v1 (veth), v0 (veth))"
    );
    // A changed prerequisite never reuses the old layer.
    for lang in ["fr", "en"] {
        let page = p.path().join(format!("book/{lang}/src/chains.md"));
        let text = std::fs::read_to_string(&page).unwrap();
        std::fs::write(&page, text.replace("echo prepared", "echo  prepared")).unwrap();
    }
    let changed = finished(&run(&["chain-user"]));
    assert_eq!(changed["chain-user"]["steps_run"], 2);
    assert_eq!(
        changed["chain-user"]["checkpoint"],
        "kept a checkpoint of `chain-base`"
    );
    // The layers of the chain as it was are stale now: `fixture list` shows
    // the current ones and counts them; `fixture clean --stale` removes
    // them, with the base of an older definition, and keeps the rest.
    let recipes = |args: &[&str]| {
        Command::new(assert_cmd::cargo::cargo_bin("recipes"))
            .args(args)
            .current_dir(p.path())
            .env("RECIPES_CACHE", &cache)
            .output()
            .unwrap()
    };
    let old_base = cache.join("bases/busybox-0123456789abcdef");
    std::fs::create_dir_all(&old_base).unwrap();
    let listed = stdout(&recipes(&["fixture", "list"]));
    assert!(listed.contains("\nbusybox after `chain-base`"), "{listed}");
    assert!(listed.contains("\nbusybox after `chain-net`"), "{listed}");
    // The chain as it was before the helper changed, and before its step
    // changed.
    assert!(listed.contains("(+2 stale, "), "{listed}");
    assert!(
        listed.contains("busybox                  built (+1 stale)"),
        "{listed}"
    );
    let cleaned = stdout(&recipes(&["fixture", "clean", "--stale"]));
    assert_eq!(cleaned.matches("removed ").count(), 3, "{cleaned}");
    assert!(!old_base.exists());
    let listed = stdout(&recipes(&["fixture", "list"]));
    assert!(!listed.contains("stale"), "{listed}");
    assert!(listed.contains("\nbusybox after `chain-base`"), "{listed}");
    let again = finished(&run(&["chain-user"]));
    assert_eq!(again["chain-user"]["steps_run"], 1);
    // `fixture clean` removes the layers with the bases.
    Command::new(assert_cmd::cargo::cargo_bin("recipes"))
        .args(["fixture", "clean"])
        .current_dir(p.path())
        .env("RECIPES_CACHE", &cache)
        .output()
        .unwrap();
    let layers = std::fs::read_dir(cache.join("layers"))
        .into_iter()
        .flatten()
        .count();
    assert_eq!(layers, 0);
}

#[test]
#[ignore = "needs root (namespaces, mounts): run as root with --include-ignored"]
fn a_shell_opens_at_a_step_of_a_chain_and_reads_commands_from_stdin() {
    require_root();
    let p = Project::new("sandbox");
    // `recipes ARGS` with `commands` on its stdin.
    let recipes_with = |args: &[&str], commands: &str| {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("recipes"))
            .args(args)
            .current_dir(p.path())
            .env("RECIPES_CACHE", crate::cache_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(commands.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let shell = |target: &str, commands: &str, extra: &[&str]| {
        recipes_with(&[&["shell", target], extra].concat(), commands)
    };
    let probe = "echo \"$RECIPE\"; cat \"$ROOTFS/etc/prepared\" 2>&1; test -e \"$ROOTFS/etc/hostname\" && echo has-hostname; hostname\n";
    // Before chain-base's only step: the fixture as built.
    let before = shell("chain-base:3", probe, &[]);
    let text = stdout(&before);
    assert!(before.status.success(), "{text}");
    assert!(text.starts_with("chain-base\n"), "{text}");
    assert!(text.contains("No such file or directory"), "{text}");
    assert!(text.contains("has-hostname\nsandbox\n"), "{text}");
    // Before chain-user's step: what chain-base left.
    let after = shell("chain-user:9", probe, &["--no-checkpoint"]);
    let text = stdout(&after);
    assert!(after.status.success(), "{text}");
    assert!(
        text.starts_with("chain-user\nprepared\nsandbox\n"),
        "{text}"
    );
    // A line that opens no step of the recipe is a located error.
    let wrong = shell("chain-user:10", "", &[]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        stdout(&wrong).contains("book/fr/src/chains.md:10: line 10 opens no step of recipe `chain-user` (its steps open at lines 9)"),
        "{}",
        stdout(&wrong)
    );
    // --shell-on-fail: the shell sees what the failing step left.
    let failed = recipes_with(
        &["run", "chain-fails", "--shell-on-fail"],
        "cat \"$ROOTFS/etc/state\"\n",
    );
    assert_eq!(failed.status.code(), Some(1));
    assert!(
        stdout(&failed).starts_with("written-before-failing\n"),
        "{}",
        stdout(&failed)
    );
    let page = std::fs::read_to_string(p.path().join("book/fr/src/chains.md")).unwrap();
    let line = page
        .lines()
        .position(|l| l.contains("recipe=chain-fails"))
        .unwrap()
        + 1;
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains(&format!("where book/fr/src/chains.md:{line} failed")),
        "{stderr}"
    );
}

#[test]
#[ignore = "needs root (namespaces, mounts): run as root with --include-ignored"]
fn a_base_that_cannot_be_built_fails_only_its_own_runs_before_any_sandbox() {
    require_root();
    let p = Project::new("sandbox");
    let out = p
        .recipes()
        .args(["run", "on-broken-base", "intact", "--format", "json"])
        .output()
        .unwrap();
    let events = finished(&out);
    let broken = &events["on-broken-base"];
    assert_eq!(broken["status"], "error", "{broken}");
    let reason = broken["reason"].as_str().unwrap();
    assert!(
        reason.contains("building fixture `broken-setup` failed"),
        "{reason}"
    );
    assert!(reason.contains("no such package: frobnicate"), "{reason}");
    passed(&events, "intact");
    // The prepare stage said it once, before the runs: as events on
    // stdout under --format json.
    let said = String::from_utf8_lossy(&out.stdout);
    let notices: Vec<serde_json::Value> = said
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| {
            e["event"] == "notice"
                && e["message"]
                    .as_str()
                    .unwrap()
                    .contains("the recipes on `broken-setup` cannot run")
        })
        .collect();
    assert_eq!(notices.len(), 1, "{said}");
    assert!(
        said.contains(r#""error":"recipes/fixtures/broken-setup.toml: the setup script"#),
        "{said}"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("broken-setup"));
}
