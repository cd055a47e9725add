//! The sandbox and fixtures, for real: these tests need root (namespaces,
//! mounts, debootstrap, LXC). CI runs them as root with
//! `RECIPES_TEST_REQUIRE_ALL=1`, which turns a skip into a failure.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use crate::{assert_gone, processes, stdout, Project};

fn root() -> bool {
    crate::root_or_skip("the sandbox needs root (namespaces and mounts)")
}

/// What a recipe could change on the host.
#[derive(Debug, PartialEq, Eq)]
struct HostState {
    hostname: String,
    links: Vec<String>,
    mounts: Vec<String>,
    nft: String,
    iptables: String,
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
    }
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
fn hostile_recipes_leave_the_host_as_it_was() {
    if !root() {
        return;
    }
    let p = Project::new("sandbox");
    let before = host_state();
    let out = p
        .recipes()
        .args(["run", "hostile-files", "hostile-host", "hostile-kernel"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(host_state(), before);
    assert!(!Path::new("/etc/recipes-was-here").exists());
    assert!(Path::new("/etc/hostname").exists());
    assert_gone("sleep 98770");
}

#[test]
fn wrecking_a_fixture_leaves_the_base_intact() {
    if !root() {
        return;
    }
    let p = Project::new("sandbox");
    p.recipes().args(["run", "wreck"]).assert().success();
    p.recipes().args(["run", "intact"]).assert().success();
    assert!(crate::cache_dir().join("bases").is_dir());
}

#[test]
fn chroot_steps_and_at_paths_see_the_fixture() {
    if !root() {
        return;
    }
    let p = Project::new("sandbox");
    let out = p
        .recipes()
        .args(["run", "chroot-step", "at-path"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stdout(&out));
}

#[test]
fn a_debian_sysv_container_boots_to_its_runlevel_and_is_attached() {
    if !root() {
        return;
    }
    let p = Project::new("sandbox");
    let before = host_state();
    let out = p.recipes().args(["run", "lxc-boot"]).output().unwrap();
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(host_state(), before);
    assert_gone("lxc-start");
}

#[test]
fn ctrl_c_leaves_nothing_behind() {
    if !root() {
        return;
    }
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
fn sigkill_of_the_runner_takes_its_sandboxes_and_the_next_run_cleans_up() {
    if !root() {
        return;
    }
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
fn an_interrupted_base_build_is_never_used() {
    if !root() {
        return;
    }
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
fn keep_prints_where_the_fixture_is() {
    if !root() {
        return;
    }
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
fn without_root_real_fixtures_say_they_need_root() {
    if !root() {
        return;
    }
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
fn net_host_shares_the_host_network_and_nothing_else() {
    if !root() {
        return;
    }
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
