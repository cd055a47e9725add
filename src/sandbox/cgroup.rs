//! The control groups of a sandbox: a folder per sandbox under
//! `recipes.sandboxes` in every hierarchy that holds a limit (`pids`,
//! `memory`: cgroup v2 when its root offers them, else the v1 hierarchies of
//! a hybrid host) or its share of the processors (`cpu`, where the host has
//! the controller), and, on cgroup v2, a child folder delegated to the
//! sandbox's root (LXC inside makes its own cgroups below it). The limits
//! sit on the parent folder, owned by the host's root, so the sandbox can
//! neither raise them nor leave them. Folders left by a runner that was
//! killed are removed by the next run.
//!
//! The `cpu` folder makes a sandbox one scheduling entity, whatever it runs:
//! where the sandboxes would otherwise sit in the root task group (a hybrid
//! host), every session started inside (each container, each systemd
//! service) is an autogroup of its own, as heavy as a whole sandbox, and a
//! booted host's dozen sessions outweigh a recipe running one `dpkg`. All
//! the sandboxes share their parent's default weight: the whole run weighs
//! on the host as one session does (as `make -j` in a terminal).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const PARENT: &str = "recipes.sandboxes";

pub use crate::model::{Limits, CPU_WEIGHT};
use serde::{Deserialize, Serialize};

/// A limit a sandbox ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    Pids(u64),
    Memory(u64),
}

impl std::fmt::Display for Hit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hit::Pids(n) => write!(
                f,
                "the sandbox reached its process limit ({n}, key `pids=`)"
            ),
            Hit::Memory(n) => write!(
                f,
                "the sandbox reached its memory limit ({}, key `memory=`)",
                crate::model::format_size(*n)
            ),
        }
    }
}

/// Where a cgroup hierarchy is mounted on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub mount: PathBuf,
    /// `None` for cgroup v2; the v1 controllers otherwise.
    pub controllers: Option<Vec<String>>,
}

/// The cgroup hierarchies mounted on the host, as this process sees them.
pub fn hierarchies() -> Vec<Hierarchy> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let options = right.nth(1).unwrap_or("");
            let mount = PathBuf::from(left.split(' ').nth(4)?);
            match fstype {
                "cgroup2" => Some(Hierarchy {
                    mount,
                    controllers: None,
                }),
                "cgroup" => Some(Hierarchy {
                    mount,
                    controllers: Some(options.split(',').map(str::to_string).collect()),
                }),
                _ => None,
            }
        })
        .collect()
}

/// The host's cgroup v2 mount point, if any.
pub fn cgroup2_mount() -> Option<PathBuf> {
    hierarchies()
        .into_iter()
        .find(|h| h.controllers.is_none())
        .map(|h| h.mount)
}

/// The folders of one sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroups {
    /// Every folder the sandbox's processes join (steps too).
    pub join: Vec<PathBuf>,
    /// The cgroup v2 folder the sandbox owns and roots its cgroup
    /// namespace at; mounted as `/sys/fs/cgroup` inside.
    pub delegated: PathBuf,
    /// The folders that carry the limits, removed last.
    pub owned: Vec<PathBuf>,
    /// Where `pids.events` and the memory counters are read.
    pub pids_dir: PathBuf,
    pub memory_dir: PathBuf,
    pub memory_v2: bool,
    pub limits: Limits,
    /// The v1 `cpu` folder (a hybrid host), which the helper joins if the
    /// kernel lets it (not a real-time runner's task, say); on cgroup v2 the
    /// weight sits on the folder of the limits.
    #[serde(default)]
    pub weight_dir: Option<PathBuf>,
    /// Whether the sandbox has a weight of its own.
    #[serde(default)]
    pub weighted: bool,
}

/// Why the cgroups of a sandbox could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup v2 hierarchy is mounted (LXC inside the sandbox needs one)")]
    NoCgroup2,
    #[error("no `{0}` cgroup controller on this host: the sandbox cannot be limited")]
    NoController(&'static str),
    #[error("cgroup {operation} {path}: {source}")]
    Io {
        operation: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io<'a>(
    operation: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Io {
        operation,
        path: path.to_path_buf(),
        source,
    }
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(io("write", path))
}

/// Makes the folders of a new sandbox with `limits` and `cpu_weight` (see
/// [`CPU_WEIGHT`]), the delegated one owned by `root_uid` (the host id of the
/// sandbox's root): each in cgroup v2 where its root offers the controller,
/// else in the v1 hierarchy that has it. A weight is a preference, not a
/// limit: a host without a `cpu` controller, or one that refuses it here,
/// runs the sandbox unweighted ([`Cgroups::weighted`] says which). On an
/// error, what was made is removed.
pub fn create(limits: Limits, cpu_weight: u16, root_uid: u32) -> Result<Cgroups, CgroupError> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let all = hierarchies();
    let v2 = all
        .iter()
        .find(|h| h.controllers.is_none())
        .ok_or(CgroupError::NoCgroup2)?;
    let (mut cgroups, in_v2) = create_v2(&v2.mount, &name, limits, cpu_weight)?;
    let mut rest = || {
        for controller in ["pids", "memory"] {
            if !in_v2.contains(&controller) {
                create_v1(&all, controller, &name, &mut cgroups)?;
            }
        }
        if !in_v2.contains(&"cpu") {
            if let Some(cpu) = v1_with(&all, "cpu") {
                cgroups.weight_dir = weigh_v1(cpu, &name, cpu_weight);
                cgroups.owned.extend(cgroups.weight_dir.clone());
                cgroups.weighted = cgroups.weight_dir.is_some();
            }
        }
        delegate(&mut cgroups, root_uid)
    };
    match rest() {
        Ok(()) => Ok(cgroups),
        Err(e) => {
            let _ = cgroups.remove();
            Err(e)
        }
    }
}

/// The sandbox's folder in the v1 `cpu` hierarchy, with its weight; `None`
/// (and no folder) where the host refuses either.
fn weigh_v1(hierarchy: &Hierarchy, name: &str, cpu_weight: u16) -> Option<PathBuf> {
    let dir = hierarchy.mount.join(PARENT).join(name);
    std::fs::create_dir_all(&dir).ok()?;
    match std::fs::write(dir.join("cpu.shares"), v1_shares(cpu_weight).to_string()) {
        Ok(()) => Some(dir),
        Err(_) => {
            let _ = std::fs::remove_dir(&dir);
            None
        }
    }
}

/// cgroup v1's `cpu.shares` (2 to 262144, 1024 by default) for a v2
/// `cpu.weight` (1 to 10000, 100 by default).
fn v1_shares(weight: u16) -> u64 {
    (u64::from(weight.clamp(1, 10_000)) * 1024 / 100).max(2)
}

/// The sandbox's cgroup v2 folder under `v2`, with the limits and the
/// weight whose controllers the v2 root offers (returned).
fn create_v2(
    v2: &Path,
    name: &str,
    limits: Limits,
    cpu_weight: u16,
) -> Result<(Cgroups, Vec<&'static str>), CgroupError> {
    let offered = std::fs::read_to_string(v2.join("cgroup.controllers")).unwrap_or_default();
    let mut in_v2: Vec<&'static str> = ["pids", "memory"]
        .into_iter()
        .filter(|c| offered.split_whitespace().any(|x| x == *c))
        .collect();
    let parent = v2.join(PARENT);
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
    if !in_v2.is_empty() {
        let enable: String = in_v2.iter().map(|c| format!("+{c} ")).collect();
        // Controllers reach a folder only through its parents' subtree_control.
        let _ = std::fs::write(v2.join("cgroup.subtree_control"), enable.trim());
        write(&parent.join("cgroup.subtree_control"), enable.trim())?;
    }
    // The weight is a preference: where the host's root does not hand `cpu`
    // down already (enabling it there would end autogrouping for every
    // process of the host), the sandbox runs without.
    let root_hands_cpu = std::fs::read_to_string(parent.join("cgroup.controllers"))
        .is_ok_and(|c| c.split_whitespace().any(|x| x == "cpu"));
    if root_hands_cpu {
        let _ = std::fs::write(parent.join("cgroup.subtree_control"), "+cpu");
        let weight = cpu_weight.clamp(1, 10_000).to_string();
        if std::fs::write(dir.join("cpu.weight"), weight).is_ok() {
            in_v2.push("cpu");
        }
    }
    if in_v2.contains(&"pids") {
        write(&dir.join("pids.max"), &limits.pids.to_string())?;
    }
    if in_v2.contains(&"memory") {
        write(&dir.join("memory.max"), &limits.memory.to_string())?;
        let _ = std::fs::write(dir.join("memory.swap.max"), "0");
    }
    let cgroups = Cgroups {
        join: Vec::new(),
        delegated: dir.join("sandbox"),
        owned: vec![dir.clone()],
        pids_dir: dir.clone(),
        memory_dir: dir,
        memory_v2: true,
        limits,
        weight_dir: None,
        weighted: in_v2.contains(&"cpu"),
    };
    Ok((cgroups, in_v2))
}

/// The v1 hierarchy that has `controller`, if any.
fn v1_with<'a>(all: &'a [Hierarchy], controller: &str) -> Option<&'a Hierarchy> {
    all.iter().find(|h| {
        h.controllers
            .as_ref()
            .is_some_and(|c| c.iter().any(|x| x == controller))
    })
}

/// The sandbox's folder for `controller` in the v1 hierarchy that has it
/// (a hybrid host), with its limit; joined and owned like the others.
fn create_v1(
    all: &[Hierarchy],
    controller: &'static str,
    name: &str,
    cgroups: &mut Cgroups,
) -> Result<(), CgroupError> {
    let hierarchy = v1_with(all, controller).ok_or(CgroupError::NoController(controller))?;
    let dir = hierarchy.mount.join(PARENT).join(name);
    std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
    cgroups.owned.push(dir.clone());
    cgroups.join.push(dir.clone());
    let limits = cgroups.limits;
    if controller == "pids" {
        write(&dir.join("pids.max"), &limits.pids.to_string())?;
        cgroups.pids_dir = dir;
    } else {
        write(
            &dir.join("memory.limit_in_bytes"),
            &limits.memory.to_string(),
        )?;
        let memsw = dir.join("memory.memsw.limit_in_bytes");
        if memsw.exists() {
            let _ = std::fs::write(memsw, limits.memory.to_string());
        }
        cgroups.memory_dir = dir;
        cgroups.memory_v2 = false;
    }
    Ok(())
}

/// The delegated child: the sandbox's root owns it and the files that
/// delegation hands over (cgroup v2's delegation model), never the limits
/// of its parent. Joined first.
fn delegate(cgroups: &mut Cgroups, root_uid: u32) -> Result<(), CgroupError> {
    let delegated = cgroups.delegated.clone();
    std::fs::create_dir_all(&delegated).map_err(io("create", &delegated))?;
    for file in [
        "",
        "cgroup.procs",
        "cgroup.subtree_control",
        "cgroup.threads",
    ] {
        let path = delegated.join(file);
        std::os::unix::fs::chown(&path, Some(root_uid), Some(root_uid))
            .map_err(io("chown", &path))?;
    }
    cgroups.join.insert(0, delegated);
    Ok(())
}

/// Moves the calling process, which must be single-threaded (freshly
/// exec'd), into every folder of the sandbox. In a cgroup v1 hierarchy it
/// moves its one thread (`tasks`): the kernel then skips the lock that makes
/// a whole process's move wait for an RCU grace period (milliseconds, once
/// per move). cgroup v2 moves whole processes only (`cgroup.procs`).
pub fn join(cgroups: &[PathBuf]) -> Result<(), CgroupError> {
    for dir in cgroups {
        let tasks = dir.join("tasks");
        if tasks.exists() {
            write(&tasks, "0")?;
        } else {
            write(&dir.join("cgroup.procs"), "0")?;
        }
    }
    Ok(())
}

fn counter(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        .unwrap_or(0)
}

impl Cgroups {
    /// The limits the sandbox ran into so far.
    pub fn hits(&self) -> Vec<Hit> {
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
        let mut hits = Vec::new();
        if counter(&read(self.pids_dir.join("pids.events")), "max ") > 0 {
            hits.push(Hit::Pids(self.limits.pids));
        }
        let memory = if self.memory_v2 {
            let events = read(self.memory_dir.join("memory.events"));
            counter(&events, "max ") + counter(&events, "oom_kill ")
        } else {
            read(self.memory_dir.join("memory.failcnt"))
                .trim()
                .parse::<u64>()
                .unwrap_or(0)
                + counter(
                    &read(self.memory_dir.join("memory.oom_control")),
                    "oom_kill ",
                )
        };
        if memory > 0 {
            hits.push(Hit::Memory(self.limits.memory));
        }
        hits
    }

    /// Kills every process left (cgroup v2's `cgroup.kill`) and removes the
    /// folders; bounded in time.
    pub fn remove(&self) -> std::io::Result<()> {
        let mut last = Ok(());
        for dir in self.owned.iter().rev() {
            if let Err(e) = remove(dir) {
                last = Err(e);
            }
        }
        last
    }
}

/// Kills everything in `dir` and removes it with its sub-folders, giving
/// up after a few seconds.
pub fn remove(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
    let start = Instant::now();
    loop {
        let result = remove_tree(dir);
        if result.is_ok() || start.elapsed() > Duration::from_secs(5) {
            return result;
        }
        kill_procs(dir);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// cgroup v1 has no `cgroup.kill`: kill what its folders still hold.
fn kill_procs(dir: &Path) {
    for entry in walkdir::WalkDir::new(dir).into_iter().flatten() {
        if entry.file_name() == "cgroup.procs" {
            for pid in std::fs::read_to_string(entry.path())
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse::<i32>().ok())
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

fn remove_tree(dir: &Path) -> std::io::Result<()> {
    // cgroup folders hold only control files: remove the deepest first.
    let mut dirs: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .contents_first(true)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_dir())
        .map(|e| e.into_path())
        .collect();
    dirs.dedup();
    for d in dirs {
        match std::fs::remove_dir(&d) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Removes the folders of runners that are no longer alive, in every
/// hierarchy.
pub fn remove_stale() {
    for hierarchy in hierarchies() {
        let parent = hierarchy.mount.join(PARENT);
        let pid_of = |name: &str| name.split('-').next()?.parse().ok();
        for dir in crate::process::left_by_dead_runs(&parent, pid_of) {
            let _ = remove(&dir);
        }
    }
}

/// Removes the shared parent folders once no runner uses them.
pub fn remove_parent_if_unused() {
    for hierarchy in hierarchies() {
        // Fails, harmlessly, while another runner has sandboxes in it.
        let _ = std::fs::remove_dir(hierarchy.mount.join(PARENT));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_by_key() {
        let events = "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n";
        assert_eq!(counter(events, "max "), 3);
        assert_eq!(counter(events, "oom_kill "), 1);
        assert_eq!(counter("max 0\n", "max "), 0);
        assert_eq!(counter("", "max "), 0);
    }

    #[test]
    fn v1_shares_scale_v2_weights() {
        assert_eq!(v1_shares(100), 1024);
        assert_eq!(v1_shares(10), 102);
        assert_eq!(v1_shares(0), 10);
        assert_eq!(v1_shares(u16::MAX), 102_400);
    }

    /// The weight reaches the host's `cpu` controller, in whichever
    /// hierarchy has it; the folders go with the sandbox.
    #[test]
    #[ignore = "needs root (makes cgroups): run as root with --include-ignored"]
    fn a_sandbox_carries_its_weight() {
        assert!(nix::unistd::geteuid().is_root(), "run as root");
        let made = create(Limits::DEFAULT, 25, 0).unwrap();
        let read = |p: PathBuf| std::fs::read_to_string(p).map(|s| s.trim().to_string());
        let v1 = made
            .weight_dir
            .as_ref()
            .and_then(|d| read(d.join("cpu.shares")).ok());
        let v2 = read(made.owned[0].join("cpu.weight")).ok();
        let weighted = made.weighted;
        made.remove().unwrap();
        assert!(made.owned.iter().all(|d| !d.exists()));
        // A hybrid host with a v1 `cpu` hierarchy always weighs.
        if v1_with(&hierarchies(), "cpu").is_some() {
            assert!(weighted);
        }
        if weighted {
            assert!(
                v1.as_deref() == Some("256") || v2.as_deref() == Some("25"),
                "{v1:?} {v2:?}"
            );
        }
    }

    #[test]
    fn hits_name_the_limit_and_its_key() {
        assert_eq!(
            Hit::Pids(2048).to_string(),
            "the sandbox reached its process limit (2048, key `pids=`)"
        );
        assert!(Hit::Memory(4 << 30).to_string().contains("4G"));
    }
}
