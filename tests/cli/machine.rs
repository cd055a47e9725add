//! What the ignored tests need of the machine, installed once per test run
//! with a notice, the way `recipes` installs what recipes need: so the
//! README's `cargo test --locked -- --include-ignored` passes by itself, as
//! root, on a fresh Debian machine. Anywhere else, the failure says what to
//! install.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The Debian packages the tests use: the sandbox and LXC, the commands
/// the test books and the book call, the host checks, and Chromium.
pub const PACKAGES: &[&str] = &[
    "lxc",
    "lxcfs",
    "uidmap",
    "debootstrap",
    "busybox-static",
    "iptables",
    "nftables",
    "bridge-utils",
    "iproute2",
    "iputils-ping",
    "procps",
    "util-linux",
    "bsdutils",
    "perl",
    "rsync",
    "libcap2-bin",
    "openssh-client",
    "ca-certificates",
    "git",
    "chromium",
    "fonts-dejavu-core",
];

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| out.stdout.ends_with(b"install ok installed"))
}

fn apt_get(args: &[&str]) -> bool {
    Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs the missing [`PACKAGES`] with one `apt-get` call (an update
/// first if the install fails), once per test run.
pub fn ensure_packages() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let result = DONE.get_or_init(|| {
        let missing: Vec<&str> = PACKAGES.iter().copied().filter(|p| !installed(p)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let list = missing.join(" ");
        if !nix::unistd::geteuid().is_root() || !Path::new("/etc/debian_version").exists() {
            return Err(format!(
                "the tests need these Debian packages: apt-get install {list}"
            ));
        }
        eprintln!(
            "tests: installing {list} with apt-get (what the tests need; .ci/run does the same)"
        );
        let mut install = vec!["install", "-y", "-q", "--no-install-recommends"];
        install.extend(&missing);
        if apt_get(&install) || (apt_get(&["update", "-q"]) && apt_get(&install)) {
            Ok(())
        } else {
            Err(format!(
                "apt-get install {list} failed (its output is above)"
            ))
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// `tests/browser`, with Debian's Chromium and `playwright-core` (from the
/// lockfile, by `npm ci`, when `node_modules` lacks it).
pub fn browser_dir() -> PathBuf {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let result = DONE.get_or_init(|| {
        if std::env::var_os("CHROMIUM").is_none() {
            ensure_packages();
        }
        if dir.join("node_modules/playwright-core").exists() {
            return Ok(());
        }
        eprintln!(
            "tests: installing playwright-core with `npm ci` in tests/browser (from its lockfile)"
        );
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            Ok(())
        } else {
            Err("`npm ci` in tests/browser failed (is Node.js with npm installed?)".into())
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    dir
}
