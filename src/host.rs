//! Host prerequisites: whether a command exists, whether we are root, and
//! the `Installer`, which installs the Debian packages of missing commands
//! with one apt-get (root, on Debian, after a one-line notice, said as
//! events) unless `--no-install`; otherwise the error names the packages.
//! Which commands a feature needs is the plan's (`plan/packages.rs`) and
//! the doctor's (`doctor/host.rs`) business.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::process::{Exit, Supervisor};
use crate::report::event::{Event, EventSink};

/// Whether a host command exists in `STEP_PATH`.
pub fn command_exists(name: &str) -> bool {
    crate::process::which(name).is_some()
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The memory the kernel says is available for new work (`MemAvailable`
/// of `/proc/meminfo`), in bytes.
pub fn mem_available() -> Option<u64> {
    mem_available_in(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

fn mem_available_in(meminfo: &str) -> Option<u64> {
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Why the host commands asked for are not all there.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// Missing, and not installed, with why not.
    #[error(
        "missing host commands: {}; install the Debian packages: apt-get install {}{}",
        .commands.join(", "),
        .packages.join(" "),
        .why.suffix()
    )]
    Missing {
        commands: Vec<String>,
        packages: Vec<String>,
        why: NotInstalled,
    },
    #[error("cannot run apt-get: {0}")]
    Apt(std::io::Error),
    /// apt-get ran and failed, with its output.
    #[error("apt-get install {} ended with {exit}:\n{output}", .packages.join(" "))]
    Failed {
        packages: Vec<String>,
        exit: Exit,
        output: String,
    },
}

/// Why missing commands were not installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotInstalled {
    /// `--no-install`.
    Refused,
    NotRoot,
    /// apt-get is for Debian only.
    NotDebian,
}

impl NotInstalled {
    /// What the error adds after the packages.
    fn suffix(self) -> &'static str {
        match self {
            NotInstalled::Refused => " (--no-install)",
            NotInstalled::NotRoot => " (not root)",
            NotInstalled::NotDebian => "",
        }
    }
}

/// Installs what is missing, once per run.
pub struct Installer {
    pub allowed: bool,
    lock: Mutex<()>,
    /// apt-get runs under the run's supervision: a timeout, and Ctrl-C.
    supervisor: Arc<Supervisor>,
    /// Where installs are said (and, through the builder, fixture builds).
    events: Arc<dyn EventSink>,
}

/// How long an `apt-get` may take.
const APT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

impl Installer {
    pub fn new(allowed: bool, supervisor: Arc<Supervisor>, events: Arc<dyn EventSink>) -> Self {
        Installer {
            allowed,
            supervisor,
            lock: Mutex::new(()),
            events,
        }
    }

    /// The run's events, which fixture builds say themselves on too.
    pub fn events(&self) -> &dyn EventSink {
        self.events.as_ref()
    }

    /// Makes sure every command exists, installing its package if allowed.
    pub fn ensure(&self, needs: &[(&str, &str)]) -> Result<(), InstallError> {
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
                NotInstalled::Refused
            } else if !is_root() {
                NotInstalled::NotRoot
            } else {
                NotInstalled::NotDebian
            };
            return Err(InstallError::Missing {
                commands: commands.iter().map(|c| c.to_string()).collect(),
                packages: packages.iter().map(|p| p.to_string()).collect(),
                why,
            });
        }
        let packages: Vec<String> = packages.iter().map(|p| p.to_string()).collect();
        self.events.event(&Event::PackagesInstalling {
            packages: packages.clone(),
            commands: commands.iter().map(|c| c.to_string()).collect(),
        });
        let installed = self.apt_install(&packages);
        self.events.event(&match &installed {
            Ok(()) => Event::PackagesInstalled { packages },
            Err(why) => Event::PackagesFailed {
                packages,
                reason: why.to_string(),
            },
        });
        installed
    }

    /// `apt-get install` (after an `apt-get update` if it fails at first).
    fn apt_install(&self, packages: &[String]) -> Result<(), InstallError> {
        let apt = |args: &[&str]| {
            let mut command = Command::new("apt-get");
            command
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null());
            self.supervisor
                .run(command, None, APT_TIMEOUT)
                .map_err(InstallError::Apt)
        };
        let mut install = vec!["install", "-y", "-q", "--no-install-recommends"];
        install.extend(packages.iter().map(String::as_str));
        let mut out = apt(&install)?;
        if out.exit != Exit::Code(0) && out.exit != Exit::Interrupted {
            apt(&["update", "-q"])?;
            out = apt(&install)?;
        }
        if out.exit != Exit::Code(0) {
            return Err(InstallError::Failed {
                packages: packages.to_vec(),
                exit: out.exit,
                output: String::from_utf8_lossy(&out.output).into_owned(),
            });
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

/// The host of the first archive URI in the apt sources that apt reads:
/// `sources.list` and the `*.list` and `*.sources` files of
/// `sources.list.d`, comments and disabled deb822 stanzas left out.
fn apt_host() -> Option<String> {
    let mut files = vec![Path::new("/etc/apt/sources.list").to_path_buf()];
    let mut parts: Vec<_> = std::fs::read_dir("/etc/apt/sources.list.d")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "list" || e == "sources"))
        .collect();
    parts.sort();
    files.extend(parts);
    files
        .iter()
        .find_map(|f| first_archive_host(&std::fs::read_to_string(f).ok()?))
}

/// The host of the first enabled `http(s)://` URI of a sources file (one-
/// line or deb822 format).
fn first_archive_host(text: &str) -> Option<String> {
    text.split("\n\n")
        .filter(|stanza| {
            !stanza.lines().any(|l| {
                let l = l.trim().to_ascii_lowercase();
                l.starts_with("enabled:") && l.ends_with("no")
            })
        })
        .flat_map(|stanza| stanza.lines())
        .map(|line| line.split('#').next().unwrap_or(""))
        .flat_map(str::split_whitespace)
        .find_map(|word| {
            let rest = word
                .strip_prefix("http://")
                .or_else(|| word.strip_prefix("https://"))?;
            rest.split('/').next().map(str::to_string)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_memory_is_read_in_bytes() {
        let meminfo = "MemTotal:       24576000 kB\nMemFree:        20000000 kB\nMemAvailable:   22000000 kB\n";
        assert_eq!(mem_available_in(meminfo), Some(22_000_000 * 1024));
        assert_eq!(mem_available_in("MemTotal: 1 kB\n"), None);
        assert!(mem_available().is_some_and(|b| b > 0));
    }

    #[test]
    fn missing_commands_name_their_packages_and_why_they_were_not_installed() {
        let missing = |why| InstallError::Missing {
            commands: vec!["debootstrap".into(), "busybox".into()],
            packages: vec!["busybox-static".into(), "debootstrap".into()],
            why,
        };
        assert_eq!(
            missing(NotInstalled::Refused).to_string(),
            "missing host commands: debootstrap, busybox; install the Debian packages: \
             apt-get install busybox-static debootstrap (--no-install)"
        );
        assert!(missing(NotInstalled::NotRoot)
            .to_string()
            .ends_with("debootstrap (not root)"));
        assert!(missing(NotInstalled::NotDebian)
            .to_string()
            .ends_with("apt-get install busybox-static debootstrap"));
    }

    #[test]
    fn the_archive_host_comes_from_enabled_sources_only() {
        let one_line = "# deb http://old.example/debian bookworm main\ndeb http://a.example/debian bookworm main\n";
        assert_eq!(first_archive_host(one_line).as_deref(), Some("a.example"));
        let deb822 = "Types: deb\nURIs: http://off.example/debian\nEnabled: no\n\nTypes: deb\nURIs: https://on.example/debian\nSuites: bookworm\n";
        assert_eq!(first_archive_host(deb822).as_deref(), Some("on.example"));
        assert_eq!(first_archive_host("# nothing here\n"), None);
    }
}
