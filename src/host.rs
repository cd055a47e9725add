//! Host prerequisites: which commands a feature needs and which Debian
//! package brings each. Missing ones are installed with apt-get (root, on
//! Debian, after a one-line notice) unless `--no-install`; otherwise the
//! error names the packages.

use std::collections::BTreeSet;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::model::{Recipe, Requirement, STEP_PATH};

/// Commands a recipe's steps may call, and their packages.
const STEP_COMMANDS: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("bridge", "iproute2"),
    ("iptables", "iptables"),
    ("nft", "nftables"),
    ("brctl", "bridge-utils"),
    ("debootstrap", "debootstrap"),
    ("busybox", "busybox-static"),
    ("lxc-start", "lxc"),
    ("lxc-attach", "lxc"),
    ("lxc-stop", "lxc"),
    ("lxc-console", "lxc"),
    ("lxc-info", "lxc"),
    ("lxc-ls", "lxc"),
    ("script", "bsdutils"),
    ("ping", "iputils-ping"),
    ("sysctl", "procps"),
    ("ps", "procps"),
];

/// Where a host command is, looked up in [`STEP_PATH`].
pub fn which(name: &str) -> Option<PathBuf> {
    STEP_PATH
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
}

pub fn command_exists(name: &str) -> bool {
    which(name).is_some()
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The commands the steps of these recipes call, with their packages.
pub fn needs_of(chain: &[&Recipe]) -> Vec<(&'static str, &'static str)> {
    let mut needs = BTreeSet::new();
    for recipe in chain {
        if recipe.requires.contains(&Requirement::Lxc) {
            needs.insert(("lxc-start", "lxc"));
        }
        for step in &recipe.steps {
            let words = step
                .body
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                .collect::<BTreeSet<_>>();
            for (command, package) in STEP_COMMANDS {
                if words.contains(command) {
                    needs.insert((*command, *package));
                }
            }
        }
    }
    needs.into_iter().collect()
}

/// Installs what is missing, once per run.
pub struct Installer {
    pub allowed: bool,
    lock: Mutex<()>,
}

impl Installer {
    pub fn new(allowed: bool) -> Self {
        Installer {
            allowed,
            lock: Mutex::new(()),
        }
    }

    /// Makes sure every command exists, installing its package if allowed.
    pub fn ensure(&self, needs: &[(&str, &str)]) -> Result<(), String> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let missing: Vec<(&str, &str)> = needs
            .iter()
            .copied()
            .filter(|(c, _)| !command_exists(c))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut packages: Vec<&str> = missing.iter().map(|(_, p)| *p).collect();
        packages.sort();
        packages.dedup();
        let commands: Vec<&str> = missing.iter().map(|(c, _)| *c).collect();
        let debian = Path::new("/etc/debian_version").exists();
        if !(self.allowed && is_root() && debian) {
            let why = if !self.allowed {
                " (--no-install)"
            } else if !is_root() {
                " (not root)"
            } else {
                ""
            };
            return Err(format!(
                "missing host commands: {}; install the Debian packages: apt-get install {}{why}",
                commands.join(", "),
                packages.join(" ")
            ));
        }
        eprintln!(
            "recipes: installing {} with apt-get (for {}; --no-install turns this off)",
            packages.join(" "),
            commands.join(", ")
        );
        let install = || {
            Command::new("apt-get")
                .args(["install", "-y", "-q", "--no-install-recommends"])
                .args(&packages)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .output()
        };
        let mut out = install().map_err(|e| format!("cannot run apt-get: {e}"))?;
        if !out.status.success() {
            let _ = Command::new("apt-get").args(["update", "-q"]).output();
            out = install().map_err(|e| format!("cannot run apt-get: {e}"))?;
        }
        if !out.status.success() {
            return Err(format!(
                "apt-get install {} failed:\n{}",
                packages.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }
}

/// Whether the package archive named in the host's apt sources answers,
/// which is what `requires=net` recipes need (they download packages).
pub fn network_available() -> bool {
    static ANSWER: OnceLock<bool> = OnceLock::new();
    *ANSWER.get_or_init(|| {
        if std::env::var_os("RECIPES_OFFLINE").is_some() {
            return false;
        }
        let Some(host) = apt_host() else {
            return false;
        };
        (host.as_str(), 80)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_ok())
    })
}

/// The host of the first archive URI in the apt sources.
fn apt_host() -> Option<String> {
    let mut files = vec![Path::new("/etc/apt/sources.list").to_path_buf()];
    files.extend(
        std::fs::read_dir("/etc/apt/sources.list.d")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path()),
    );
    files.iter().find_map(|f| {
        let text = std::fs::read_to_string(f).ok()?;
        text.split_whitespace().find_map(|word| {
            let rest = word
                .strip_prefix("http://")
                .or_else(|| word.strip_prefix("https://"))?;
            rest.split('/').next().map(str::to_string)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_page;

    #[test]
    fn needs_come_from_the_commands_steps_call_and_from_requires() {
        let page = "```sh recipe=a requires=lxc\nip link add br0 type bridge\nnft list ruleset | grep -c nat\n```\n\n```console recipe=a\n$ iptables-save\n$ brctl show\n```\n";
        let (recipes, problems) = parse_page(Path::new("p.md"), "p.md", "fr", page);
        assert!(problems.is_empty(), "{problems:?}");
        let needs = needs_of(&[&recipes[0]]);
        for want in [
            ("ip", "iproute2"),
            ("nft", "nftables"),
            ("brctl", "bridge-utils"),
            ("lxc-start", "lxc"),
        ] {
            assert!(needs.contains(&want), "{want:?} in {needs:?}");
        }
        // A word inside another word is not a command.
        assert!(!needs.contains(&("iptables", "iptables")), "{needs:?}");
    }
}
