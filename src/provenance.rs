//! Where a result was proven (DESIGN §8): the host's kernel, LXC version,
//! cgroup layout and security modules, the fixture with its definition's
//! digest and its distribution release, and the tool's version and commit.
//! Read from the host once per run and from the fixture's base per result.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The provenance of one result (field names are a contract).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// `uname -r`.
    pub kernel: String,
    /// The LXC version (`lxc-start --version`), or `none`.
    pub lxc: String,
    pub fixture: String,
    /// The digest of the fixture's definition (`empty` for the empty one).
    pub fixture_digest: String,
    /// The fixture's `/etc/debian_version` or `os-release` name, or `none`.
    pub distro: String,
    /// `v1`, `hybrid` or `v2`.
    pub cgroup: String,
    /// The active Linux security modules, in kernel order.
    pub lsm: Vec<String>,
    /// `recipes VERSION (COMMIT)`.
    pub tool: String,
    /// The booted host fixture the steps ran in (`host=`), or `none`.
    #[serde(default = "none")]
    pub host: String,
}

fn none() -> String {
    "none".into()
}

/// What is the same for every result of one run on this host.
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub kernel: String,
    pub lxc: String,
    pub cgroup: String,
    pub lsm: Vec<String>,
    pub tool: String,
}

impl HostFacts {
    pub fn gather() -> HostFacts {
        let asked = Asked::read_or_ask(&crate::workspace::cache_dir());
        HostFacts {
            kernel: nix::sys::utsname::uname()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_else(|_| "unknown".into()),
            lxc: asked.lxc,
            cgroup: cgroup_layout(Path::new("/sys/fs/cgroup")).into(),
            lsm: asked.lsm,
            tool: tool(),
        }
    }

    /// The provenance of a result on `fixture`, whose base (if built) is
    /// at `rootfs`.
    pub fn with_fixture(&self, fixture: &str, digest: &str, rootfs: Option<&Path>) -> Provenance {
        Provenance {
            kernel: self.kernel.clone(),
            lxc: self.lxc.clone(),
            fixture: fixture.to_string(),
            fixture_digest: digest.to_string(),
            distro: rootfs.and_then(distro).unwrap_or_else(|| "none".into()),
            cgroup: self.cgroup.clone(),
            lsm: self.lsm.clone(),
            tool: self.tool.clone(),
            host: none(),
        }
    }
}

/// The facts other programs give (`lxc-start --version`, and the security
/// modules, read through `unshare`, `sh`, `mount` and `cat` where securityfs
/// is not mounted): five programs started per run. Kept in the cache for
/// as long as they cannot change: the same boot, the same `lxc-start`, the
/// same user asking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Asked {
    /// The kernel's boot id, `lxc-start`'s path, size and change time, and
    /// the effective user id.
    key: String,
    lxc: String,
    lsm: Vec<String>,
}

impl Asked {
    fn read_or_ask(cache: &Path) -> Asked {
        let key = Asked::key();
        let path = cache.join("host-facts.json");
        let kept = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str::<Asked>(&text).ok());
        if let Some(kept) = kept.filter(|k| key.is_some() && Some(&k.key) == key.as_ref()) {
            return kept;
        }
        let asked = Asked {
            key: key.clone().unwrap_or_default(),
            lxc: lxc_version().unwrap_or_else(|| "none".into()),
            lsm: security_modules(),
        };
        if key.is_some() {
            // Best effort: another run may write it too (each write is
            // whole), or the cache may be read-only.
            if let Ok(text) = serde_json::to_string(&asked) {
                if std::fs::create_dir_all(cache).is_ok() {
                    let _ = crate::fsutil::write_atomically(&path, text.as_bytes());
                }
            }
        }
        asked
    }

    /// `None` when the boot cannot be told apart from the next one.
    fn key() -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let lxc_start = std::env::split_paths(crate::model::STEP_PATH)
            .map(|dir| dir.join("lxc-start"))
            .find_map(|p| std::fs::metadata(&p).ok().map(|m| (p, m)))
            .map_or("none".to_string(), |(p, m)| {
                format!(
                    "{} {} {}.{}",
                    p.display(),
                    m.size(),
                    m.ctime(),
                    m.ctime_nsec()
                )
            });
        let euid = nix::unistd::geteuid();
        Some(format!("{} {lxc_start} {euid}", boot.trim()))
    }
}

/// `recipes VERSION (COMMIT)`.
pub fn tool() -> String {
    format!(
        "recipes {} ({})",
        env!("CARGO_PKG_VERSION"),
        env!("RECIPES_COMMIT")
    )
}

fn lxc_version() -> Option<String> {
    let out = std::process::Command::new("lxc-start")
        .arg("--version")
        .env("PATH", crate::model::STEP_PATH)
        .output()
        .ok()?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !version.is_empty()).then_some(version)
}

/// `v2` when the cgroup root is cgroup2, `hybrid` when only its `unified`
/// folder is, `v1` otherwise.
fn cgroup_layout(root: &Path) -> &'static str {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
    let is_v2 = |p: &Path| statfs(p).is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC);
    if is_v2(root) {
        "v2"
    } else if is_v2(&root.join("unified")) {
        "hybrid"
    } else {
        "v1"
    }
}

/// The kernel's list of active security modules. Where securityfs is not
/// mounted (a host without systemd), root reads it from a securityfs
/// mounted in a private mount namespace, so the host is left as it is;
/// otherwise what sysfs shows of AppArmor and SELinux, or `unknown`.
fn security_modules() -> Vec<String> {
    let list = |text: &str| -> Vec<String> {
        text.trim()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    if let Ok(text) = std::fs::read_to_string("/sys/kernel/security/lsm") {
        return list(&text);
    }
    if crate::host::is_root() {
        let private = std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount -t securityfs securityfs /sys/kernel/security && cat /sys/kernel/security/lsm")
            .env("PATH", crate::model::STEP_PATH)
            .stderr(std::process::Stdio::null())
            .output();
        if let Ok(out) = private {
            let found = list(&String::from_utf8_lossy(&out.stdout));
            if out.status.success() && !found.is_empty() {
                return found;
            }
        }
    }
    let mut found = Vec::new();
    if std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
    {
        found.push("apparmor".to_string());
    }
    if Path::new("/sys/fs/selinux/enforce").exists() {
        found.push("selinux".to_string());
    }
    if found.is_empty() {
        found.push("unknown".to_string());
    }
    found
}

/// `Debian 12.8`, or the `PRETTY_NAME` of `os-release`.
pub fn distro(rootfs: &Path) -> Option<String> {
    let os_release = std::fs::read_to_string(rootfs.join("etc/os-release"))
        .or_else(|_| std::fs::read_to_string(rootfs.join("usr/lib/os-release")))
        .ok();
    let field = |key: &str| {
        os_release.as_deref().and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(|v| v.trim().trim_matches('"').to_string())
        })
    };
    if let Ok(version) = std::fs::read_to_string(rootfs.join("etc/debian_version")) {
        let name = field("NAME").map_or("Debian".to_string(), |n| {
            n.split_whitespace().next().unwrap_or("Debian").to_string()
        });
        return Some(format!("{name} {}", version.trim()));
    }
    field("PRETTY_NAME")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distro_from_debian_version_or_os_release() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(distro(dir.path()), None);
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/os-release"),
            "PRETTY_NAME=\"Alpine Linux v3.20\"\nNAME=\"Alpine Linux\"\n",
        )
        .unwrap();
        assert_eq!(distro(dir.path()).unwrap(), "Alpine Linux v3.20");
        std::fs::write(
            dir.path().join("etc/os-release"),
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/debian_version"), "12.8\n").unwrap();
        assert_eq!(distro(dir.path()).unwrap(), "Debian 12.8");
    }

    #[test]
    fn asked_facts_are_kept_for_the_same_boot_and_lxc_only() {
        let dir = tempfile::tempdir().unwrap();
        let key = Asked::key().expect("a boot id");
        let kept = |key: &str| Asked {
            key: key.to_string(),
            lxc: "9.9.9-kept".into(),
            lsm: vec!["kept".into()],
        };
        let write = |asked: &Asked| {
            let text = serde_json::to_string(asked).unwrap();
            std::fs::write(dir.path().join("host-facts.json"), text).unwrap();
        };
        write(&kept(&key));
        assert_eq!(Asked::read_or_ask(dir.path()), kept(&key));
        // Another boot (or another lxc-start): asked again, and kept anew.
        write(&kept("another boot"));
        let asked = Asked::read_or_ask(dir.path());
        assert_ne!(asked.lxc, "9.9.9-kept");
        assert_eq!(asked.key, key);
        let text = std::fs::read_to_string(dir.path().join("host-facts.json")).unwrap();
        assert_eq!(serde_json::from_str::<Asked>(&text).unwrap(), asked);
    }

    #[test]
    fn host_facts_are_filled() {
        let facts = HostFacts::gather();
        assert!(!facts.kernel.is_empty());
        assert!(["v1", "hybrid", "v2"].contains(&facts.cgroup.as_str()));
        assert!(facts.tool.starts_with("recipes "), "{}", facts.tool);
        let p = facts.with_fixture("empty", "empty", None);
        assert_eq!((p.fixture.as_str(), p.distro.as_str()), ("empty", "none"));
    }
}
