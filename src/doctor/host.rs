//! What the doctor knows of a host: a [`HostDescription`], read from the
//! live system ([`HostDescription::read_live`]) or from a JSON file a host
//! was recorded in (`recipes doctor --describe`), so the checks read the
//! same facts either way and hosts that cannot be reproduced here are
//! still tested. Reading is all this module does; judging is the checks'.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::modules;
use super::DoctorError;
use crate::fsutil::FsError;
use crate::sandbox::{cgroup, linux, userns};

/// Every fact the checks read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostDescription {
    /// The runner's effective user id.
    pub euid: u32,
    /// Whether `/etc/debian_version` exists (apt-get can install packages).
    pub debian: bool,
    pub kernel: KernelFacts,
    pub user_namespaces: UserNamespaces,
    /// Host ids given out by `/etc/subuid` and `/etc/subgid`, and users and
    /// groups of `/etc/passwd` and `/etc/group` with ids above 65535.
    pub id_grants: Vec<IdGrant>,
    pub cgroups: CgroupFacts,
    pub seccomp: SeccompFacts,
    pub cache: CacheFacts,
    /// The host commands the runner and the book call: found or not (in
    /// the steps' `PATH`).
    pub commands: BTreeMap<String, bool>,
}

/// The kernel and what it can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelFacts {
    /// `uname -r`.
    pub release: String,
    /// The file systems of `/proc/filesystems`.
    pub filesystems: Vec<String>,
    /// Whether `/dev/fuse` exists.
    pub dev_fuse: bool,
    pub modules: ModuleFacts,
    /// Whether AppArmor runs (`/sys/module/apparmor/parameters/enabled`
    /// says `Y`); absent from descriptions recorded before it was read.
    #[serde(default)]
    pub apparmor: Option<bool>,
}

/// Where the kernel's modules stand. Each list holds only the modules the
/// doctor asks about ([`modules::KNOWN`], or the names given to
/// [`ModuleFacts::read_live`]), so a description stays short.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleFacts {
    /// Whether `/proc/modules` exists: the kernel loads modules at all.
    pub loadable: bool,
    /// Loaded modules (`/proc/modules`, or `/sys/module/NAME/initstate`).
    pub loaded: Vec<String>,
    /// Modules `/sys/module` shows as built in (no `initstate`).
    pub builtin_sysfs: Vec<String>,
    /// Modules `/lib/modules/RELEASE/modules.builtin` lists, when readable.
    pub builtin: Option<Vec<String>>,
    /// Module files installed for the kernel (`modules.dep`), when readable.
    pub installed: Option<Vec<String>>,
    /// The kernel's build configuration (`/proc/config.gz` or
    /// `/boot/config-RELEASE`): symbol → `y` or `m`, a symbol not set left
    /// out; `None` when neither is readable.
    pub config: Option<BTreeMap<String, String>>,
}

/// The kernel's user namespaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserNamespaces {
    /// Whether `/proc/self/ns/user` exists: the kernel has them.
    pub supported: bool,
    /// `user.max_user_namespaces`.
    pub max_user_namespaces: Option<u64>,
    /// `kernel.unprivileged_userns_clone` (Debian's kernels), if present.
    pub unprivileged_userns_clone: Option<u64>,
    /// `kernel.apparmor_restrict_unprivileged_userns` (Ubuntu's), if present.
    pub apparmor_restrict_unprivileged_userns: Option<u64>,
    /// Making a user namespace that maps a sandbox's slot of ids, for real.
    pub sandbox_ids: Probe,
}

/// A range of host ids given to a user or group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdGrant {
    /// Where it is given (`/etc/subuid`).
    pub file: String,
    pub owner: String,
    pub first: u64,
    pub count: u64,
}

/// The cgroup hierarchies and what they offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CgroupFacts {
    /// Where cgroup v2 is mounted.
    pub v2_mount: Option<PathBuf>,
    /// The controllers its root offers (`cgroup.controllers`).
    pub v2_controllers: Vec<String>,
    /// The cgroup v1 hierarchies.
    pub v1: Vec<V1Hierarchy>,
    /// Making and removing a sandbox's cgroups with the default limits,
    /// for real.
    pub probe: Probe,
}

/// A cgroup v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct V1Hierarchy {
    pub mount: PathBuf,
    pub controllers: Vec<String>,
}

/// The kernel's seccomp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeccompFacts {
    /// `/proc/sys/kernel/seccomp/actions_avail` (Linux 4.14 and later).
    pub actions_avail: Option<Vec<String>>,
    /// Whether `prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)` is known to the
    /// kernel (asked without a filter, so nothing is installed); `None`
    /// when its answer says neither.
    pub filter_mode: Option<bool>,
}

/// The cache: where bases, checkpoints and id slots live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheFacts {
    pub path: PathBuf,
    /// The type of the file system it is on.
    pub filesystem: Option<String>,
    /// Bytes free there for the runner.
    pub free_bytes: Option<u64>,
    /// An idmapped, read-only view of a folder in the cache, made with a
    /// sandbox's user namespace, for real.
    pub idmap: Probe,
}

/// What trying something for real gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case", deny_unknown_fields)]
pub enum Probe {
    Works,
    /// The kernel's refusal, with what was asked of it.
    Failed {
        error: String,
    },
    NotTried {
        why: String,
    },
}

impl Probe {
    fn of<E: std::fmt::Display>(result: Result<(), E>) -> Probe {
        match result {
            Ok(()) => Probe::Works,
            Err(e) => Probe::Failed {
                error: e.to_string(),
            },
        }
    }

    fn not_tried(why: &str) -> Probe {
        Probe::NotTried { why: why.into() }
    }
}

impl HostDescription {
    /// Reads the real host. As root it also tries, for real and leaving
    /// nothing behind, what a sandbox does: a user namespace with a slot of
    /// ids, an idmapped view of a folder in the cache, the cgroups.
    pub fn read_live() -> HostDescription {
        HostDescription::read(probe_sandbox)
    }

    /// Reads the real host as [`HostDescription::read_live`] does, but for
    /// `run` and `test`: the sandbox probes that all worked are kept in the
    /// cache for the rest of the boot ([`kept_probes`]), so a run does not
    /// make and remove a user namespace, a mount and cgroups before its own.
    /// `doctor` always tries them again.
    pub fn read_for_run() -> HostDescription {
        HostDescription::read(kept_probes)
    }

    fn read(probe: fn(&Path) -> (Probe, Probe, Probe)) -> HostDescription {
        let cache = crate::workspace::cache_dir();
        let root = crate::host::is_root();
        let (sandbox_ids, idmap, cgroup_probe) = if root {
            probe(&cache)
        } else {
            let why = "needs root";
            (
                Probe::not_tried(why),
                Probe::not_tried(why),
                Probe::not_tried(why),
            )
        };
        let sysctl = |name: &str| read_u64(&Path::new("/proc/sys").join(name));
        HostDescription {
            euid: nix::unistd::geteuid().as_raw(),
            debian: Path::new("/etc/debian_version").exists(),
            kernel: KernelFacts::read_live(),
            user_namespaces: UserNamespaces {
                supported: Path::new("/proc/self/ns/user").exists(),
                max_user_namespaces: sysctl("user/max_user_namespaces"),
                unprivileged_userns_clone: sysctl("kernel/unprivileged_userns_clone"),
                apparmor_restrict_unprivileged_userns: sysctl(
                    "kernel/apparmor_restrict_unprivileged_userns",
                ),
                sandbox_ids,
            },
            id_grants: id_grants(),
            cgroups: cgroup_facts(cgroup_probe),
            seccomp: SeccompFacts {
                actions_avail: std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail")
                    .ok()
                    .map(|text| text.split_whitespace().map(str::to_string).collect()),
                filter_mode: seccomp_filter_mode(),
            },
            cache: CacheFacts {
                filesystem: filesystem_of(&cache),
                free_bytes: free_bytes(&cache),
                path: cache,
                idmap,
            },
            commands: host_commands()
                .into_iter()
                .map(|(command, _)| (command.to_string(), crate::host::command_exists(command)))
                .collect(),
        }
    }

    /// A description recorded in a JSON file.
    pub fn from_file(path: &Path) -> Result<HostDescription, DoctorError> {
        let fail = |message: String| DoctorError::Description {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        serde_json::from_str(&text).map_err(|e| fail(e.to_string()))
    }
}

impl KernelFacts {
    /// The running kernel, its file systems and the modules of
    /// [`modules::KNOWN`].
    pub fn read_live() -> KernelFacts {
        let names: Vec<&str> = modules::KNOWN.iter().map(|m| m.name).collect();
        let mut kernel = KernelFacts::read_live_for(&names);
        kernel.apparmor = Some(
            std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
                .is_ok_and(|flag| flag.starts_with('Y')),
        );
        kernel
    }

    /// The running kernel, its file systems and the modules `names`
    /// (AppArmor left unread).
    pub fn read_live_for(names: &[&str]) -> KernelFacts {
        let release = release();
        KernelFacts {
            filesystems: std::fs::read_to_string("/proc/filesystems")
                .unwrap_or_default()
                .lines()
                .filter_map(|line| line.split_whitespace().last())
                .map(str::to_string)
                .collect(),
            dev_fuse: Path::new("/dev/fuse").exists(),
            modules: ModuleFacts::read_live(&release, names),
            apparmor: None,
            release,
        }
    }
}

/// `uname -r`.
pub(super) fn release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into())
}

impl ModuleFacts {
    /// Where the modules `names` stand in the kernel `release`.
    pub fn read_live(release: &str, names: &[&str]) -> ModuleFacts {
        let wanted = |name: &str| names.contains(&name);
        let modules_dir = Path::new("/lib/modules").join(release);
        let listed = |file: &str| {
            std::fs::read_to_string(modules_dir.join(file))
                .ok()
                .map(|text| {
                    let mut found: Vec<String> = text
                        .lines()
                        .filter_map(|line| module_of_path(line.split(':').next()?))
                        .filter(|name| wanted(name))
                        .collect();
                    found.sort();
                    found.dedup();
                    found
                })
        };
        let proc_modules = std::fs::read_to_string("/proc/modules");
        let mut loaded: Vec<String> = proc_modules
            .as_deref()
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .filter(|name| wanted(name))
            .map(str::to_string)
            .collect();
        let mut builtin_sysfs = Vec::new();
        for name in names {
            let dir = Path::new("/sys/module").join(name);
            if !dir.is_dir() {
                continue;
            }
            if dir.join("initstate").exists() {
                loaded.push(name.to_string());
            } else {
                builtin_sysfs.push(name.to_string());
            }
        }
        loaded.sort();
        loaded.dedup();
        let symbols: Vec<&str> = names
            .iter()
            .filter_map(|name| modules::config_symbol(name))
            .chain([modules::CONFIG_MODULES])
            .collect();
        ModuleFacts {
            loadable: proc_modules.is_ok(),
            loaded,
            builtin_sysfs,
            builtin: listed("modules.builtin"),
            installed: listed("modules.dep"),
            config: kernel_config(release).map(|text| config_symbols(&text, &symbols)),
        }
    }
}

/// `kernel/drivers/net/dummy.ko.xz` → `dummy` (modules use `_` where
/// their files may use `-`).
fn module_of_path(path: &str) -> Option<String> {
    let file = path.trim().rsplit('/').next()?;
    let (stem, _) = file.split_once(".ko")?;
    Some(stem.replace('-', "_"))
}

/// The kernel's build configuration, as text.
fn kernel_config(release: &str) -> Option<String> {
    if let Ok(file) = std::fs::File::open("/proc/config.gz") {
        let mut text = String::new();
        if flate2::read::GzDecoder::new(file)
            .read_to_string(&mut text)
            .is_ok()
        {
            return Some(text);
        }
    }
    std::fs::read_to_string(format!("/boot/config-{release}")).ok()
}

/// The values of `symbols` in a kernel configuration (`CONFIG_X=y`);
/// symbols not set are left out.
fn config_symbols(text: &str, symbols: &[&str]) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .filter(|(symbol, _)| symbols.contains(symbol))
        .map(|(symbol, value)| (symbol.to_string(), value.trim_matches('"').to_string()))
        .collect()
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Ids given out on this host: `/etc/subuid` and `/etc/subgid` ranges,
/// and users and groups with ids above 65535.
fn id_grants() -> Vec<IdGrant> {
    let mut grants = Vec::new();
    for file in ["/etc/subuid", "/etc/subgid"] {
        for line in std::fs::read_to_string(file).unwrap_or_default().lines() {
            let fields: Vec<&str> = line.trim().split(':').collect();
            if let [owner, first, count] = fields[..] {
                if let (Ok(first), Ok(count)) = (first.parse(), count.parse()) {
                    grants.push(IdGrant {
                        file: file.into(),
                        owner: owner.into(),
                        first,
                        count,
                    });
                }
            }
        }
    }
    for file in ["/etc/passwd", "/etc/group"] {
        for line in std::fs::read_to_string(file).unwrap_or_default().lines() {
            let fields: Vec<&str> = line.split(':').collect();
            if let (Some(owner), Some(Ok(id))) = (fields.first(), fields.get(2).map(|f| f.parse()))
            {
                if id > 65535 {
                    grants.push(IdGrant {
                        file: file.into(),
                        owner: owner.to_string(),
                        first: id,
                        count: 1,
                    });
                }
            }
        }
    }
    grants
}

fn cgroup_facts(probe: Probe) -> CgroupFacts {
    let hierarchies = cgroup::hierarchies();
    let v2_mount = hierarchies
        .iter()
        .find(|h| h.controllers.is_none())
        .map(|h| h.mount.clone());
    CgroupFacts {
        v2_controllers: v2_mount
            .as_ref()
            .and_then(|m| std::fs::read_to_string(m.join("cgroup.controllers")).ok())
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        v2_mount,
        v1: hierarchies
            .into_iter()
            .filter_map(|h| {
                Some(V1Hierarchy {
                    controllers: h
                        .controllers?
                        .into_iter()
                        .filter(|c| c != "rw" && c != "ro")
                        .collect(),
                    mount: h.mount,
                })
            })
            .collect(),
        probe,
    }
}

/// Asks the kernel to install a seccomp filter without giving one: a
/// kernel with filters answers EFAULT (it went to read the filter), one
/// without them EINVAL. Nothing is installed either way.
fn seccomp_filter_mode() -> Option<bool> {
    const SECCOMP_MODE_FILTER: libc::c_ulong = 2;
    // SAFETY: a null filter pointer is never read by a kernel that knows
    // the mode: it fails with EFAULT before installing anything.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            SECCOMP_MODE_FILTER,
            std::ptr::null::<libc::c_void>(),
            0,
            0,
        )
    };
    match (rc, std::io::Error::last_os_error().raw_os_error()) {
        (-1, Some(libc::EFAULT)) => Some(true),
        (-1, Some(libc::EINVAL)) => Some(false),
        _ => None,
    }
}

/// The folder itself or, while it does not exist yet, its nearest parent.
fn existing(path: &Path) -> Option<&Path> {
    path.ancestors().find(|p| p.exists())
}

fn free_bytes(path: &Path) -> Option<u64> {
    let stat = nix::sys::statvfs::statvfs(existing(path)?).ok()?;
    Some(stat.blocks_available() as u64 * stat.fragment_size() as u64)
}

/// The type of the file system `path` is on: that of the deepest mount
/// above it in `/proc/self/mountinfo`.
fn filesystem_of(path: &Path) -> Option<String> {
    let path = existing(path)?.canonicalize().ok()?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount = PathBuf::from(unescape_mount(left.split(' ').nth(4)?));
            let fstype = right.split(' ').next()?;
            path.starts_with(&mount)
                .then(|| (mount.components().count(), fstype.to_string()))
        })
        .max_by_key(|(depth, _)| *depth)
        .map(|(_, fstype)| fstype)
}

/// Mount points in mountinfo escape space, tab, newline and `\` as `\NNN`.
fn unescape_mount(field: &str) -> String {
    let mut out = String::new();
    let mut rest = field;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 4);
        match code.and_then(|c| u8::from_str_radix(c, 8).ok()) {
            Some(byte) => {
                out.push(byte as char);
                rest = &rest[at + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// As root: what a sandbox does, tried in the cache and undone at once. A
/// slot of ids (so no live sandbox shares them), a user namespace mapping
/// it, an idmapped view of a fresh folder whose file must show the slot's
/// first id as owner, and the sandbox's cgroups with the default limits.
/// The sandbox probes, tried once per boot: a kept answer is used when it
/// was taken in this boot, for this cache, by this user, and every probe
/// worked. A failure is never kept, so a fix is seen by the next run.
fn kept_probes(cache: &Path) -> (Probe, Probe, Probe) {
    let path = cache.join("probes.key");
    let Some(key) = probes_key(cache) else {
        return probe_sandbox(cache);
    };
    let kept = std::fs::read_to_string(&path).ok();
    if kept.as_deref().map(str::trim) == Some(key.as_str()) {
        return (Probe::Works, Probe::Works, Probe::Works);
    }
    let probes = probe_sandbox(cache);
    if [&probes.0, &probes.1, &probes.2]
        .iter()
        .all(|p| **p == Probe::Works)
    {
        // Best effort: a read-only cache only means trying again next run.
        let _ = crate::fsutil::write_atomically(&path, key.as_bytes());
    }
    probes
}

/// This boot, this cache, this user: `None` when the boot cannot be told
/// apart from the next.
fn probes_key(cache: &Path) -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(format!(
        "{} {} {}",
        boot.trim(),
        cache.display(),
        nix::unistd::geteuid()
    ))
}

fn probe_sandbox(cache: &Path) -> (Probe, Probe, Probe) {
    let failed = |e: String| Probe::Failed { error: e };
    if let Err(e) = std::fs::create_dir_all(cache) {
        let probe = failed(format!("cannot create {}: {e}", cache.display()));
        return (probe.clone(), probe.clone(), probe);
    }
    let slot = match userns::Slot::acquire(&cache.join("slots")) {
        Ok(slot) => slot,
        Err(e) => {
            let probe = failed(e.to_string());
            return (probe.clone(), probe.clone(), probe);
        }
    };
    let cgroups = Probe::of(
        cgroup::create(cgroup::Limits::DEFAULT, cgroup::CPU_WEIGHT, slot.ids.base).and_then(
            |made| {
                made.remove().map_err(|e| cgroup::CgroupError::Io {
                    operation: "remove",
                    path: made.owned[0].clone(),
                    source: e,
                })
            },
        ),
    );
    cgroup::remove_parent_if_unused();
    let userns = match userns::mapped_namespace(slot.ids) {
        Ok(fd) => fd,
        Err(e) => {
            return (
                failed(e.to_string()),
                Probe::not_tried("no user namespace with a sandbox's ids could be made"),
                cgroups,
            )
        }
    };
    (
        Probe::Works,
        Probe::of(idmapped_view(cache, &userns, slot.ids.base)),
        cgroups,
    )
}

/// Why the idmapped view of the probe's folder failed.
#[derive(Debug, thiserror::Error)]
enum ProbeError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("open_tree and mount_setattr(MOUNT_ATTR_IDMAP) on {}: {source}", .dir.display())]
    Idmap {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the idmapped view of {}: {source}", .file.display())]
    Read {
        file: PathBuf,
        source: nix::errno::Errno,
    },
    #[error(
        "the idmapped view of {} shows it owned by {uid}, not by the sandbox's root ({owner})",
        .file.display()
    )]
    Owner { file: PathBuf, uid: u32, owner: u32 },
}

/// An idmapped view of a fresh folder in `cache`, whose file (owned by the
/// host's root) must show `owner` (the slot's first id) through it.
fn idmapped_view(
    cache: &Path,
    userns: &std::os::fd::OwnedFd,
    owner: u32,
) -> Result<(), ProbeError> {
    let dir = tempfile::Builder::new()
        .prefix(".doctor-")
        .tempdir_in(cache)
        .map_err(FsError::at("create a folder in", cache))?;
    let file = dir.path().join("probe");
    std::fs::write(&file, "").map_err(FsError::at("write", &file))?;
    let view = linux::idmapped_view(dir.path(), userns).map_err(|source| ProbeError::Idmap {
        dir: dir.path().to_path_buf(),
        source,
    })?;
    let stat = nix::sys::stat::fstatat(&view, "probe", nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|source| ProbeError::Read {
            file: file.clone(),
            source,
        })?;
    if stat.st_uid != owner {
        return Err(ProbeError::Owner {
            file,
            uid: stat.st_uid,
            owner,
        });
    }
    Ok(())
}

/// Host commands the runner itself calls, with their Debian packages
/// (the steps' own are [`crate::plan::packages::STEP_COMMANDS`]).
const RUNNER_COMMANDS: &[(&str, &str)] = &[
    ("lxc-start", "lxc"),
    ("lxcfs", "lxcfs"),
    ("newuidmap", "uidmap"),
    ("debootstrap", "debootstrap"),
    ("busybox", "busybox-static"),
    ("tar", "tar"),
    ("modprobe", "kmod"),
];

/// The host commands the runner, its fixture builders and the book's steps
/// call, with their Debian packages, without repeats.
pub fn host_commands() -> Vec<(&'static str, &'static str)> {
    let mut all: Vec<(&str, &str)> = Vec::new();
    for pair in RUNNER_COMMANDS
        .iter()
        .chain(crate::plan::packages::STEP_COMMANDS)
    {
        if !all.contains(pair) {
            all.push(*pair);
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_files_name_their_modules() {
        for (path, want) in [
            ("kernel/drivers/net/dummy.ko", Some("dummy")),
            ("kernel/net/netfilter/nf_tables.ko.xz", Some("nf_tables")),
            ("kernel/fs/fuse/fuse.ko.zst:", Some("fuse")),
            ("kernel/drivers/net/ipvlan/ipvtap-x.ko.gz", Some("ipvtap_x")),
            ("kernel/fs/overlayfs", None),
        ] {
            assert_eq!(module_of_path(path).as_deref(), want, "{path}");
        }
    }

    #[test]
    fn the_config_keeps_the_symbols_asked_that_are_set() {
        let text = "# comment\nCONFIG_DUMMY=m\n# CONFIG_VETH is not set\nCONFIG_MODULES=y\nCONFIG_OTHER=y\nCONFIG_NAME=\"x\"\n";
        let config = config_symbols(text, &["CONFIG_DUMMY", "CONFIG_VETH", "CONFIG_MODULES"]);
        let want: BTreeMap<String, String> = [("CONFIG_DUMMY", "m"), ("CONFIG_MODULES", "y")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(config, want);
    }

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape_mount("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape_mount("/plain"), "/plain");
        assert_eq!(unescape_mount("/odd\\x"), "/odd\\x");
    }

    #[test]
    fn the_live_host_reads_without_failing() {
        let kernel = KernelFacts::read_live();
        assert!(!kernel.release.is_empty());
        assert!(kernel.filesystems.iter().any(|f| f == "proc"), "{kernel:?}");
        // The kernel this runs on has seccomp filters (the sandbox's tests
        // install one).
        assert_eq!(seccomp_filter_mode(), Some(true));
    }
}

#[cfg(test)]
mod kept_tests {
    use super::*;

    #[test]
    fn probes_are_kept_only_when_they_worked_and_only_for_this_boot() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path();
        // A file where the id slots' folder goes: every probe fails.
        std::fs::write(cache.join("slots"), "").unwrap();
        let failed = kept_probes(cache);
        assert!(matches!(failed.0, Probe::Failed { .. }), "{failed:?}");
        assert!(!cache.join("probes.key").exists(), "a failure is kept");
        // Kept for this boot: not tried again (they would fail).
        std::fs::write(cache.join("probes.key"), probes_key(cache).unwrap()).unwrap();
        assert_eq!(
            kept_probes(cache),
            (Probe::Works, Probe::Works, Probe::Works)
        );
        // Kept in another boot: tried again.
        std::fs::write(cache.join("probes.key"), "another boot").unwrap();
        assert!(matches!(kept_probes(cache).0, Probe::Failed { .. }));
    }
}
