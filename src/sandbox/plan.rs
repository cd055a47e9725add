//! The sandbox as an ordered list of setup operations, built from a
//! [`SandboxSpec`] without touching the system, so the plan itself is
//! unit-tested without root; [`super::linux`] applies it for real.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the fixture is mounted inside the sandbox.
pub const ROOTFS: &str = "/run/recipes/rootfs";
/// The steps' working directory inside the sandbox.
pub const SCRATCH: &str = "/tmp/recipe";
/// Host folders hidden behind a fresh, empty, writable tmpfs.
pub const WRITABLE: &[&str] = &[
    "/tmp",
    "/run",
    "/var/tmp",
    "/var/lib/lxc",
    "/var/cache/lxc",
    "/var/log",
];
/// Device nodes made in the sandbox's `/dev`: name, major, minor.
pub const DEVICES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];
/// Parts of the fresh procfs that reach the host kernel: read-only.
pub const PROC_READONLY: &[&str] = &[
    "/proc/sys",
    "/proc/sysrq-trigger",
    "/proc/irq",
    "/proc/bus",
    "/proc/fs",
];

/// What the runner asks of one sandbox.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SandboxSpec {
    /// The runner's pid: the sandbox dies if its parent is not this one.
    pub parent: i32,
    /// The base root filesystem (overlay lower layer); `None` for `empty`.
    pub lower: Option<PathBuf>,
    /// A host folder for the overlay's upper and work layers (`--keep`);
    /// otherwise they live in the sandbox's tmpfs and die with it.
    pub keep: Option<PathBuf>,
    /// Where the fixture also appears (`at=`).
    pub at: Option<String>,
    /// Share the host's network namespace (`net=host`).
    pub net_host: bool,
    /// A cgroup v2 folder the sandbox moves into and roots its cgroup
    /// namespace at.
    pub cgroup: Option<PathBuf>,
    pub hostname: String,
    /// Host folders steps must still see (the cache of bases and compiled
    /// programs, the shell helpers), even when they lie under a folder the
    /// sandbox hides behind a tmpfs (a checkout in `/tmp`, say).
    #[serde(default)]
    pub visible: Vec<PathBuf>,
}

/// One setup operation, applied in order by PID 1 of the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Stop mount propagation to and from the host.
    MakePrivate,
    /// Make every mount under `/` read-only (recursively).
    ReadOnlyTree(PathBuf),
    Tmpfs {
        target: PathBuf,
        mode: u32,
    },
    /// Keep a handle on a host folder before it may be hidden.
    Hold(PathBuf),
    /// Show a held folder again at its own path, read-only.
    Restore(PathBuf),
    /// A fresh tmpfs that keeps the empty folder skeleton of what it hides
    /// (so `/var/log/lxc` still exists, as on the host, but empty).
    TmpfsSkeleton {
        target: PathBuf,
    },
    Mkdir(PathBuf),
    /// A character device node, mode 0666.
    CharDevice {
        path: PathBuf,
        major: u64,
        minor: u64,
    },
    /// Bind a file or folder; `readonly` remounts the bind read-only.
    Bind {
        source: PathBuf,
        target: PathBuf,
        readonly: bool,
    },
    /// Bind a path onto itself read-only.
    ReadOnly(PathBuf),
    /// Bind a path onto itself read-write (undoes `ReadOnlyTree` below it).
    Writable(PathBuf),
    Proc(PathBuf),
    Sysfs(PathBuf),
    Cgroup2(PathBuf),
    Devpts(PathBuf),
    Mqueue(PathBuf),
    Symlink {
        target: PathBuf,
        link: PathBuf,
    },
    Overlay {
        lower: PathBuf,
        upper: PathBuf,
        work: PathBuf,
        target: PathBuf,
    },
    Hostname(String),
    LoopbackUp,
}

/// The operations that build the sandbox `spec` describes.
pub fn plan(spec: &SandboxSpec) -> Vec<Op> {
    let p = PathBuf::from;
    let mut ops = vec![Op::MakePrivate, Op::ReadOnlyTree(p("/"))];
    let hidden: Vec<&PathBuf> = spec
        .visible
        .iter()
        .filter(|v| WRITABLE.iter().any(|w| v.starts_with(w)))
        .collect();
    ops.extend(hidden.iter().map(|v| Op::Hold((*v).clone())));
    for dir in WRITABLE {
        ops.push(match *dir {
            "/tmp" | "/var/tmp" => Op::Tmpfs {
                target: p(dir),
                mode: 0o1777,
            },
            _ => Op::TmpfsSkeleton { target: p(dir) },
        });
    }
    ops.extend(hidden.iter().map(|v| Op::Restore((*v).clone())));
    // A private /dev: safe nodes only, and a pty instance of its own.
    ops.push(Op::Tmpfs {
        target: p("/dev"),
        mode: 0o755,
    });
    for (name, major, minor) in DEVICES {
        ops.push(Op::CharDevice {
            path: Path::new("/dev").join(name),
            major: *major,
            minor: *minor,
        });
    }
    ops.push(Op::Devpts(p("/dev/pts")));
    ops.push(Op::Symlink {
        target: p("pts/ptmx"),
        link: p("/dev/ptmx"),
    });
    ops.push(Op::Tmpfs {
        target: p("/dev/shm"),
        mode: 0o1777,
    });
    ops.push(Op::Mqueue(p("/dev/mqueue")));
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        ops.push(Op::Symlink {
            target: p(target),
            link: Path::new("/dev").join(name),
        });
    }
    // Kernel views of the sandbox's own namespaces.
    ops.push(Op::Proc(p("/proc")));
    for path in PROC_READONLY {
        ops.push(Op::ReadOnly(p(path)));
    }
    if !spec.net_host {
        // Per network namespace, so writable (ip_forward and the like).
        ops.push(Op::Writable(p("/proc/sys/net")));
    }
    if !spec.net_host {
        // sysfs shows the network devices of the namespace that mounts it.
        // Sharing the host's network, the host's /sys (read-only) is right.
        ops.push(Op::Sysfs(p("/sys")));
    }
    ops.push(Op::Cgroup2(p("/sys/fs/cgroup")));
    // The fixture: an overlay on the base, or an empty folder.
    let rootfs = p(ROOTFS);
    match &spec.lower {
        Some(lower) => {
            let layers = match &spec.keep {
                Some(keep) => {
                    ops.push(Op::Mkdir(p("/run/recipes/keep")));
                    ops.push(Op::Bind {
                        source: keep.clone(),
                        target: p("/run/recipes/keep"),
                        readonly: false,
                    });
                    p("/run/recipes/keep")
                }
                None => p("/run/recipes"),
            };
            for dir in ["upper", "work"] {
                ops.push(Op::Mkdir(layers.join(dir)));
            }
            ops.push(Op::Mkdir(rootfs.clone()));
            ops.push(Op::Overlay {
                lower: lower.clone(),
                upper: layers.join("upper"),
                work: layers.join("work"),
                target: rootfs.clone(),
            });
        }
        None => match &spec.keep {
            Some(keep) => {
                ops.push(Op::Mkdir(rootfs.clone()));
                ops.push(Op::Bind {
                    source: keep.clone(),
                    target: rootfs.clone(),
                    readonly: false,
                });
            }
            None => ops.push(Op::Mkdir(rootfs.clone())),
        },
    }
    if let Some(at) = &spec.at {
        ops.push(Op::Mkdir(p(at)));
        ops.push(Op::Bind {
            source: rootfs.clone(),
            target: p(at),
            readonly: false,
        });
    }
    ops.push(Op::Mkdir(p(SCRATCH)));
    ops.push(Op::Hostname(spec.hostname.clone()));
    if !spec.net_host {
        ops.push(Op::LoopbackUp);
    }
    ops
}

/// `$ROOTFS` as steps see it: the `at=` path when there is one.
pub fn rootfs_path(spec: &SandboxSpec) -> String {
    spec.at.clone().unwrap_or_else(|| ROOTFS.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SandboxSpec {
        SandboxSpec {
            parent: 1,
            lower: Some(PathBuf::from("/cache/bases/debian-sysv/rootfs")),
            keep: None,
            at: None,
            net_host: false,
            cgroup: None,
            hostname: "sandbox".into(),
            visible: vec!["/root/.cache/recipes".into()],
        }
    }

    fn position(ops: &[Op], pred: impl Fn(&Op) -> bool) -> usize {
        ops.iter().position(pred).expect("operation missing")
    }

    #[test]
    fn host_becomes_read_only_before_anything_writable_is_mounted() {
        let ops = plan(&spec());
        assert_eq!(ops[0], Op::MakePrivate);
        assert_eq!(ops[1], Op::ReadOnlyTree("/".into()));
        for dir in WRITABLE {
            let fresh = ops.contains(&Op::Tmpfs {
                target: dir.into(),
                mode: 0o1777,
            }) || ops.contains(&Op::TmpfsSkeleton { target: dir.into() });
            assert!(fresh, "{dir}");
        }
    }

    #[test]
    fn host_folders_under_a_hidden_one_are_held_then_shown_again() {
        let s = SandboxSpec {
            visible: vec!["/tmp/ci/target/cache".into(), "/root/.cache/recipes".into()],
            ..spec()
        };
        let ops = plan(&s);
        let hold = position(&ops, |o| *o == Op::Hold("/tmp/ci/target/cache".into()));
        let tmp = position(
            &ops,
            |o| matches!(o, Op::Tmpfs { target, .. } if target == Path::new("/tmp")),
        );
        let restore = position(&ops, |o| *o == Op::Restore("/tmp/ci/target/cache".into()));
        let overlay = position(&ops, |o| matches!(o, Op::Overlay { .. }));
        assert!(hold < tmp && tmp < restore && restore < overlay);
        // A folder no tmpfs hides needs nothing.
        assert!(!ops.contains(&Op::Hold("/root/.cache/recipes".into())));
    }

    #[test]
    fn kernel_knobs_of_the_host_stay_read_only() {
        let ops = plan(&spec());
        let proc_at = position(&ops, |o| *o == Op::Proc("/proc".into()));
        let sys_ro = position(&ops, |o| *o == Op::ReadOnly("/proc/sys".into()));
        let net_rw = position(&ops, |o| *o == Op::Writable("/proc/sys/net".into()));
        assert!(proc_at < sys_ro && sys_ro < net_rw);
        assert!(ops.contains(&Op::ReadOnly("/proc/sysrq-trigger".into())));
    }

    #[test]
    fn shared_network_keeps_proc_sys_net_read_only() {
        let ops = plan(&SandboxSpec {
            net_host: true,
            ..spec()
        });
        assert!(!ops.contains(&Op::Writable("/proc/sys/net".into())));
        assert!(!ops.contains(&Op::LoopbackUp));
        assert!(!ops.iter().any(|o| matches!(o, Op::Sysfs(_))));
    }

    #[test]
    fn overlay_layers_live_in_the_sandbox_unless_kept() {
        let ops = plan(&spec());
        assert!(ops.contains(&Op::Overlay {
            lower: "/cache/bases/debian-sysv/rootfs".into(),
            upper: "/run/recipes/upper".into(),
            work: "/run/recipes/work".into(),
            target: ROOTFS.into(),
        }));
        let kept = plan(&SandboxSpec {
            keep: Some("/var/tmp/k".into()),
            ..spec()
        });
        let bind = position(
            &kept,
            |o| matches!(o, Op::Bind { source, .. } if source == Path::new("/var/tmp/k")),
        );
        let overlay = position(
            &kept,
            |o| matches!(o, Op::Overlay { upper, .. } if upper == Path::new("/run/recipes/keep/upper")),
        );
        assert!(bind < overlay);
    }

    #[test]
    fn at_binds_the_fixture_after_it_exists() {
        let s = SandboxSpec {
            at: Some("/var/lib/lxc/web1/rootfs".into()),
            ..spec()
        };
        let ops = plan(&s);
        let overlay = position(&ops, |o| matches!(o, Op::Overlay { .. }));
        let bind = position(
            &ops,
            |o| matches!(o, Op::Bind { target, .. } if target == Path::new("/var/lib/lxc/web1/rootfs")),
        );
        let lxc_tmpfs = position(
            &ops,
            |o| matches!(o, Op::TmpfsSkeleton { target } if target == Path::new("/var/lib/lxc")),
        );
        assert!(lxc_tmpfs < overlay && overlay < bind);
        assert_eq!(rootfs_path(&s), "/var/lib/lxc/web1/rootfs");
    }

    #[test]
    fn empty_fixture_is_a_plain_folder() {
        let ops = plan(&SandboxSpec {
            lower: None,
            ..spec()
        });
        assert!(!ops.iter().any(|o| matches!(o, Op::Overlay { .. })));
        assert!(ops.contains(&Op::Mkdir(ROOTFS.into())));
    }

    #[test]
    fn proc_comes_before_sysfs_and_cgroups() {
        let ops = plan(&spec());
        let sysfs = position(&ops, |o| matches!(o, Op::Sysfs(_)));
        let cgroup = position(&ops, |o| matches!(o, Op::Cgroup2(_)));
        assert!(sysfs < cgroup);
    }
}
