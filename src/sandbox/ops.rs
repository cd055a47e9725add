//! The sandbox as two ordered lists of setup operations, built from a
//! [`SandboxSpec`] without touching the system, so the plans themselves are
//! unit-tested without root; [`super::linux`] applies them for real.
//!
//! The first list runs as the host's root in a private mount namespace,
//! before the sandbox's user namespace gets one of its own: every mount it
//! makes (the read-only host, the fresh `/tmp`, `/run`, `/dev`, the bases)
//! reaches the sandbox *locked*, so root inside can neither remount, unmount
//! nor change its flags. The second list runs as the sandbox's root, inside:
//! kernel views of its own namespaces and the fixture's overlay.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cgroup::{Cgroups, Limits};

/// Where the sandbox's own files live inside (a fresh tmpfs).
pub const RUN: &str = "/run/recipes";
/// Where the fixture is mounted inside the sandbox.
pub const ROOTFS: &str = "/run/recipes/rootfs";
/// The fixture's base, idmapped and read-only.
pub const BASE: &str = "/run/recipes/base";
/// A guest fixture's base (`host=`), idmapped and read-only.
pub const GUEST_BASE: &str = "/run/recipes/guest-base";
/// LXC's folder in a booted host: a tmpfs of its own.
pub const HOST_LXC: &str = "/var/lib/lxc";
/// Where a booted host shows the recipe's own fixture when it names no
/// `at=` path.
pub const GUEST_DEFAULT: &str = "/var/lib/recipes/rootfs";
/// The steps' working directory inside the sandbox.
pub const SCRATCH: &str = "/tmp/recipe";
/// Host views of proc and sysfs, kept out of reach (mode 0700, owned by the
/// host's root) so that the kernel still lets the sandbox mount fresh ones:
/// in a user namespace it mounts a proc or sysfs only where the mount
/// namespace already holds one "fully visible" (fs/namespace.c,
/// `mnt_already_visible`: every locked mount on it covers an empty folder
/// the kernel made for mounts, such as /sys/fs/cgroup). The sandbox's own
/// /sys is not one for the containers inside (the mask over
/// `APPARMOR_ENABLED` covers a file, and reaches them locked), so this one
/// is what lets an unprivileged container there mount its sysfs. It gives
/// the sandbox nothing: no step can enter the folder, and the kernel only
/// checks that it exists; what a fresh sysfs shows is the mounter's own
/// network namespace, as it would anyway.
pub const HIDDEN: &str = "/run/.host";
/// Host folders steps write: each one a fresh, empty, writable tmpfs,
/// whatever the host holds there (nothing, a folder with its own
/// containers, a link to another disk). Those under `/var` are made by the
/// host's root in a private overlay of the host's `/var`, so the sandbox
/// cannot unmount them and nothing is created on the host; `/root` is made
/// by the sandbox's PID 1 in its own root, which never shows the host's.
pub const WRITABLE: &[&str] = &[
    "/var/tmp",
    "/var/log",
    "/var/lib/lxc",
    "/var/cache/lxc",
    "/var/lib/lxcfs",
    "/root",
];
/// The one writable folder that keeps the empty folder skeleton of the
/// host's (`/var/log/apt` still exists); the others start empty, so the
/// names of the host's own containers never show.
pub const SKELETON: &str = "/var/log";
/// The host folder the sandbox sees through a private overlay of its own.
pub const VAR: &str = "/var";
/// The folders outside the fixture whose files a checkpoint keeps with it
/// (LXC's configurations and logs, root's home): the writable ones a host
/// keeps across a reboot. `/tmp` (the steps' working folder included),
/// `/run` and `/dev` start afresh, as they do on a host that boots; so does
/// lxcfs's mount point.
pub const KEPT: &[&str] = &[
    "/var/lib/lxc",
    "/var/cache/lxc",
    "/var/log",
    "/var/tmp",
    "/root",
];
/// Where PID 1 builds the sandbox's root (a fresh tmpfs that mirrors the
/// host's top folders) before pivoting into it.
pub const NEW_ROOT: &str = "/run/newroot";
/// Set-user-ID helpers that cannot work under `no_new_privs`, hidden so
/// that tools take their unprivileged path (LXC, as root, then writes a
/// container's id maps itself instead of calling `newuidmap`).
pub const MASKED: &[&str] = &["/usr/bin/newuidmap", "/usr/bin/newgidmap"];
/// Where LXC reads whether the kernel runs AppArmor. Hidden inside (it then
/// reads as off): LXC there can load no profile ("running in an
/// unprivileged container without stacking") and sees no securityfs, so on
/// an AppArmor kernel (Debian's) it refuses every container ("Incomplete
/// AppArmor support in your kernel"). LXC then sets no profile: containers
/// inside keep the one the host's policy gives `lxc-start` when it runs
/// (Debian's lxc package loads `/usr/bin/lxc-start`, which lets busybox and
/// sysvinit boot, not systemd: "Failed to mount tmpfs at /dev/shm:
/// Permission denied"), or none. Under `no_new_privs` no step could leave
/// that profile anyway.
pub const APPARMOR_ENABLED: &str = "/sys/module/apparmor/parameters/enabled";
/// Top folders of the host not mirrored into the sandbox's root: fresh
/// ones replace them.
pub const NOT_MIRRORED: &[&str] = &["proc", "sys", "dev", "run", "tmp", "root"];
/// The device nodes of the sandbox's `/dev` (name, major, minor): the
/// harmless ones, and FUSE (lxcfs runs inside). No other can be made: mknod
/// of a device needs the host's root.
pub const DEVICES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
    ("fuse", 10, 229),
];

/// A host folder shown inside at a fixed path.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Share {
    pub host: PathBuf,
    pub inside: PathBuf,
    pub writable: bool,
}

/// The host ids the sandbox's ids map to: inside `0..count` is
/// `base..base+count` outside.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdRange {
    pub base: u32,
    pub count: u32,
}

/// What the runner asks of one sandbox.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SandboxSpec {
    /// The runner's pid: the sandbox dies if its parent is not this one.
    pub parent: i32,
    pub ids: IdRange,
    /// The base root filesystem (overlay lower layer); `None` for `empty`.
    pub lower: Option<PathBuf>,
    /// Checkpoint layers above the base (host folders, lowest first),
    /// idmapped and read-only like it.
    #[serde(default)]
    pub layers: Vec<PathBuf>,
    /// A host folder shown writable as the fixture itself, without an
    /// overlay (a base being built).
    #[serde(default)]
    pub rootfs_rw: Option<PathBuf>,
    /// A host folder for the overlay's upper and work layers (`--keep`);
    /// otherwise they live in the sandbox's tmpfs and die with it.
    pub keep: Option<PathBuf>,
    /// Where the fixture also appears (`at=`).
    pub at: Option<String>,
    /// Share the host's network namespace (`net=host`).
    pub net_host: bool,
    /// The sandbox's control groups (made by the runner).
    pub cgroups: Option<Cgroups>,
    pub limits: Limits,
    /// Its share of busy processors (see [`super::cgroup::CPU_WEIGHT`]).
    #[serde(default = "default_cpu_weight")]
    pub cpu_weight: u16,
    pub hostname: String,
    /// Host folders shown read-only inside (compiled programs, helpers).
    #[serde(default)]
    pub shares: Vec<Share>,
    /// With a booted host (`host=`), whose tree is then the fixture: the
    /// recipe's own fixture, shown at a path of that tree.
    #[serde(default)]
    pub guest: Option<Guest>,
}

fn default_cpu_weight() -> u16 {
    super::cgroup::CPU_WEIGHT
}

/// The recipe's own fixture inside a booted host's tree.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Guest {
    /// Its base (an overlay's lower layer); `None` for `empty`.
    pub lower: Option<PathBuf>,
    /// Where it appears in the host's tree (`at=`, or [`GUEST_DEFAULT`]).
    pub path: String,
}

/// Where a cloned mount comes from and how it is presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSource {
    pub source: PathBuf,
    /// Shift owners through the sandbox's user namespace.
    pub idmap: bool,
    pub readonly: bool,
}

/// One setup operation, applied in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Stop mount propagation to and from the host.
    MakePrivate,
    /// Keep a detached copy of a mount (a base, a device node) before its
    /// path is hidden; attached later by [`Op::Attach`].
    Hold {
        key: String,
        mount: MountSource,
    },
    /// Make every mount under a path read-only (recursively).
    ReadOnlyTree(PathBuf),
    /// Undo [`Op::ReadOnlyTree`] for a moved-away kernel view, so that the
    /// kernel lets the sandbox mount fresh, writable ones.
    WritableTree(PathBuf),
    /// A fresh tmpfs owned by `uid`, keeping the empty folder skeleton of
    /// `skeleton` (taken before mounting: so `/var/log/apt` still exists).
    Tmpfs {
        target: PathBuf,
        mode: u32,
        uid: u32,
        size: u64,
        skeleton: Option<PathBuf>,
        noexec: bool,
    },
    /// A private, writable overlay of a host folder (its changes live in
    /// `layers`), so that a missing folder can be made below it.
    OverlayHost {
        dir: PathBuf,
        layers: PathBuf,
    },
    /// Make `path` a plain folder, in a private overlay: a link or a file
    /// there is removed, a missing folder is made with its parents (owned
    /// by the host's root), an existing folder is left as it is.
    PlainDir(PathBuf),
    /// A folder, owned by `uid`.
    Mkdir {
        path: PathBuf,
        uid: u32,
    },
    /// Move a mount tree elsewhere.
    Move {
        from: PathBuf,
        to: PathBuf,
    },
    /// A character device node, mode 0666, owned by `uid`.
    Device {
        path: PathBuf,
        major: u64,
        minor: u64,
        uid: u32,
    },
    /// Attach what [`Op::Hold`] kept.
    Attach {
        key: String,
        target: PathBuf,
    },
    Symlink {
        target: PathBuf,
        link: PathBuf,
    },
    // Inside the sandbox:
    /// Bind every top folder of `/` (links recreated) into `to`, except
    /// `skip`: the sandbox's root shows the host, mount by mount, each one
    /// a copy its root may unmount without uncovering anything.
    MirrorHost {
        to: PathBuf,
        skip: Vec<String>,
    },
    /// Make `new_root` the root and detach the old one.
    PivotRoot(PathBuf),
    Proc(PathBuf),
    Sysfs(PathBuf),
    Cgroup2(PathBuf),
    Devpts(PathBuf),
    Mqueue(PathBuf),
    Overlay {
        /// Lower layers, the topmost first.
        lowers: Vec<PathBuf>,
        upper: PathBuf,
        work: PathBuf,
        target: PathBuf,
    },
    /// Hide a host file behind `/dev/null`, when it exists.
    Mask(PathBuf),
    /// Bind a folder elsewhere (inside: `at=`).
    Bind {
        source: PathBuf,
        target: PathBuf,
    },
    Hostname(String),
    LoopbackUp,
}

impl std::fmt::Display for Op {
    /// The operation as the end of "cannot …": what, and where.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = |p: &Path| p.display().to_string();
        match self {
            Op::MakePrivate => write!(f, "make its mounts private to it"),
            Op::Hold { mount, .. } => write!(f, "take a copy of the mount at {}", d(&mount.source)),
            Op::ReadOnlyTree(p) => write!(f, "make {} read-only", d(p)),
            Op::WritableTree(p) => write!(f, "make {} writable", d(p)),
            Op::Tmpfs { target, .. } => write!(f, "mount a fresh tmpfs on {}", d(target)),
            Op::OverlayHost { dir, .. } => {
                write!(f, "mount a private overlay of the host's {}", d(dir))
            }
            Op::PlainDir(p) | Op::Mkdir { path: p, .. } => write!(f, "make the folder {}", d(p)),
            Op::Move { from, to } => write!(f, "move the mount {} to {}", d(from), d(to)),
            Op::Device { path, .. } => write!(f, "make the device node {}", d(path)),
            Op::Attach { target, .. } => write!(f, "mount its copy on {}", d(target)),
            Op::Symlink { link, .. } => write!(f, "make the link {}", d(link)),
            Op::MirrorHost { to, .. } => write!(f, "show the host's folders in {}", d(to)),
            Op::PivotRoot(p) => write!(f, "make {} its root", d(p)),
            Op::Proc(p) => write!(f, "mount proc on {}", d(p)),
            Op::Sysfs(p) => write!(f, "mount sysfs on {}", d(p)),
            Op::Cgroup2(p) => write!(f, "mount cgroup2 on {}", d(p)),
            Op::Devpts(p) => write!(f, "mount devpts on {}", d(p)),
            Op::Mqueue(p) => write!(f, "mount mqueue on {}", d(p)),
            Op::Overlay { target, .. } => write!(f, "mount the fixture's overlay on {}", d(target)),
            Op::Mask(p) => write!(f, "hide {}", d(p)),
            Op::Bind { source, target } => write!(f, "bind {} on {}", d(source), d(target)),
            Op::Hostname(name) => write!(f, "set the host name {name}"),
            Op::LoopbackUp => write!(f, "bring the loopback interface up"),
        }
    }
}

/// What the host's root prepares, in a private mount namespace, before the
/// sandbox gets its own. The list never depends on what the host holds.
pub fn host_ops(spec: &SandboxSpec) -> Vec<Op> {
    let mut ops = vec![Op::MakePrivate];
    holds(spec, &mut ops);
    ops.push(Op::ReadOnlyTree(PathBuf::from("/")));
    staging_run(spec, &mut ops);
    writable_folders(spec, &mut ops);
    private_dev(spec, &mut ops);
    own_files(spec, &mut ops);
    ops
}

/// Detached copies of what the sandbox shows from the host (the base and
/// its layers, kept folders, shares), taken before their paths are hidden.
fn holds(spec: &SandboxSpec, ops: &mut Vec<Op>) {
    let hold = |key: &str, source: &Path, idmap: bool, readonly: bool| Op::Hold {
        key: key.into(),
        mount: MountSource {
            source: source.to_path_buf(),
            idmap,
            readonly,
        },
    };
    if let Some(lower) = &spec.lower {
        ops.push(hold("base", lower, true, true));
    }
    for (i, layer) in spec.layers.iter().enumerate() {
        ops.push(hold(&format!("layer{i}"), layer, true, true));
    }
    if let Some(rootfs) = &spec.rootfs_rw {
        ops.push(hold("rootfs", rootfs, true, false));
    }
    if let Some(lower) = spec.guest.as_ref().and_then(|g| g.lower.as_ref()) {
        ops.push(hold("guest", lower, true, true));
    }
    if let Some(keep) = &spec.keep {
        ops.push(hold("keep", keep, false, false));
    }
    for (i, share) in spec.shares.iter().enumerate() {
        ops.push(hold(
            &format!("share{i}"),
            &share.host,
            false,
            !share.writable,
        ));
    }
}

/// A staging /run: the hidden host views, the sandbox's own files, and the
/// folder PID 1 builds its root in.
fn staging_run(spec: &SandboxSpec, ops: &mut Vec<Op>) {
    let p = PathBuf::from;
    let root = spec.ids.base;
    let size = spec.limits.memory;
    ops.push(Op::Tmpfs {
        target: p("/run"),
        mode: 0o755,
        uid: root,
        size,
        skeleton: Some(p("/run")),
        noexec: false,
    });
    ops.push(Op::Tmpfs {
        target: p(HIDDEN),
        mode: 0o700,
        uid: 0,
        size: 1 << 20,
        skeleton: None,
        noexec: true,
    });
    let hidden = Path::new(HIDDEN);
    for view in ["proc", "sys"] {
        let from = Path::new("/").join(view);
        let to = hidden.join(view);
        ops.push(Op::Mkdir {
            path: to.clone(),
            uid: 0,
        });
        if view == "sys" && spec.net_host {
            // Sharing the host's network, the host's /sys (read-only)
            // stays: a fresh sysfs shows the devices of the namespace that
            // mounts it. A copy of it is kept here all the same, as the
            // fully visible sysfs the kernel asks for (see `HIDDEN`): the
            // one at /sys gets a mask inside (`APPARMOR_ENABLED`), which
            // a container's user namespace sees locked over a file, so
            // without this copy an unprivileged container could mount no
            // sysfs of its own network namespace.
            ops.push(Op::Bind {
                source: from,
                target: to.clone(),
            });
        } else {
            ops.push(Op::Move {
                from,
                to: to.clone(),
            });
        }
        ops.push(Op::WritableTree(to));
    }
}

/// One fresh tree for `/var`, the same whatever the host holds: a private
/// overlay of the host's `/var` where each folder steps write is made a
/// plain folder, turned read-only again, with a fresh tmpfs on each of
/// those folders.
fn writable_folders(spec: &SandboxSpec, ops: &mut Vec<Op>) {
    let var = Path::new(VAR);
    let under_var: Vec<&Path> = WRITABLE
        .iter()
        .map(Path::new)
        .filter(|dir| dir.starts_with(var))
        .collect();
    ops.push(Op::OverlayHost {
        dir: var.to_path_buf(),
        layers: Path::new(HIDDEN).join("var"),
    });
    ops.extend(under_var.iter().map(|dir| Op::PlainDir(dir.to_path_buf())));
    ops.push(Op::ReadOnlyTree(var.to_path_buf()));
    for dir in under_var {
        ops.push(Op::Tmpfs {
            target: dir.to_path_buf(),
            mode: if dir == Path::new("/var/tmp") {
                0o1777
            } else {
                0o755
            },
            uid: spec.ids.base,
            size: spec.limits.memory,
            skeleton: (dir == Path::new(SKELETON)).then(|| dir.to_path_buf()),
            noexec: false,
        });
    }
}

/// A private /dev with the allowed nodes, made by the host's root.
fn private_dev(spec: &SandboxSpec, ops: &mut Vec<Op>) {
    let p = PathBuf::from;
    let root = spec.ids.base;
    let size = spec.limits.memory;
    ops.push(Op::Tmpfs {
        target: p("/dev"),
        mode: 0o755,
        uid: root,
        size: 1 << 20,
        skeleton: None,
        noexec: true,
    });
    for (name, major, minor) in DEVICES {
        ops.push(Op::Device {
            path: Path::new("/dev").join(name),
            major: *major,
            minor: *minor,
            uid: root,
        });
    }
    for dir in ["pts", "mqueue"] {
        ops.push(Op::Mkdir {
            path: Path::new("/dev").join(dir),
            uid: root,
        });
    }
    ops.push(Op::Tmpfs {
        target: p("/dev/shm"),
        mode: 0o1777,
        uid: root,
        size,
        skeleton: None,
        noexec: false,
    });
    for (target, link) in [
        ("pts/ptmx", "ptmx"),
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ] {
        ops.push(Op::Symlink {
            target: p(target),
            link: Path::new("/dev").join(link),
        });
    }
}

/// The sandbox's own files under /run/recipes: the fixture's mount point,
/// the base and its layers, kept layers, shares.
fn own_files(spec: &SandboxSpec, ops: &mut Vec<Op>) {
    let p = PathBuf::from;
    let root = spec.ids.base;
    for dir in [RUN, ROOTFS, NEW_ROOT] {
        ops.push(Op::Mkdir {
            path: p(dir),
            uid: root,
        });
    }
    if spec.lower.is_some() {
        ops.push(Op::Mkdir {
            path: p(BASE),
            uid: root,
        });
        ops.push(Op::Attach {
            key: "base".into(),
            target: p(BASE),
        });
        for i in 0..spec.layers.len() {
            let target = layer_path(i);
            ops.push(Op::Mkdir {
                path: target.clone(),
                uid: root,
            });
            ops.push(Op::Attach {
                key: format!("layer{i}"),
                target,
            });
        }
    }
    if spec.rootfs_rw.is_some() {
        ops.push(Op::Attach {
            key: "rootfs".into(),
            target: p(ROOTFS),
        });
    }
    if spec.guest.as_ref().is_some_and(|g| g.lower.is_some()) {
        ops.push(Op::Mkdir {
            path: p(GUEST_BASE),
            uid: root,
        });
        ops.push(Op::Attach {
            key: "guest".into(),
            target: p(GUEST_BASE),
        });
    }
    if spec.keep.is_some() {
        // With the `empty` fixture, the kept folder is the fixture itself;
        // otherwise it holds the overlay's layers.
        let target = if spec.lower.is_none() && spec.rootfs_rw.is_none() {
            p(ROOTFS)
        } else {
            let layers = Path::new(RUN).join("keep");
            ops.push(Op::Mkdir {
                path: layers.clone(),
                uid: root,
            });
            layers
        };
        ops.push(Op::Attach {
            key: "keep".into(),
            target,
        });
    }
    for (i, share) in spec.shares.iter().enumerate() {
        ops.push(Op::Mkdir {
            path: share.inside.clone(),
            uid: root,
        });
        ops.push(Op::Attach {
            key: format!("share{i}"),
            target: share.inside.clone(),
        });
    }
}

/// What the sandbox's root sets up inside, in its own namespaces: a root
/// of its own that mirrors the host, then the kernel views and the fixture.
pub fn inner_ops(spec: &SandboxSpec) -> Vec<Op> {
    let mut ops = new_root(spec);
    kernel_views_and_fixture(spec, &mut ops);
    ops
}

/// A tmpfs that mirrors the host folder by folder, with a fresh `/run` and
/// `/tmp`, pivoted into: unmounting anything PID 1 mounted uncovers an empty
/// folder of its own root.
fn new_root(spec: &SandboxSpec) -> Vec<Op> {
    let p = PathBuf::from;
    let new_root = p(NEW_ROOT);
    let mut skip: Vec<String> = NOT_MIRRORED.iter().map(|s| s.to_string()).collect();
    if spec.net_host {
        skip.retain(|s| s != "sys");
    }
    let mut ops = vec![
        Op::Tmpfs {
            target: new_root.clone(),
            mode: 0o755,
            uid: 0,
            size: 1 << 20,
            skeleton: None,
            noexec: false,
        },
        Op::MirrorHost {
            to: new_root.clone(),
            skip,
        },
        Op::Mkdir {
            path: new_root.join("dev"),
            uid: 0,
        },
        Op::Bind {
            source: p("/dev"),
            target: new_root.join("dev"),
        },
        Op::Tmpfs {
            target: new_root.join("run"),
            mode: 0o755,
            uid: 0,
            size: spec.limits.memory,
            skeleton: Some(p("/run")),
            noexec: false,
        },
    ];
    for dir in [RUN, HIDDEN] {
        let target = new_root.join(dir.trim_start_matches('/'));
        ops.push(Op::Mkdir {
            path: target.clone(),
            uid: 0,
        });
        ops.push(Op::Bind {
            source: p(dir),
            target,
        });
    }
    ops.push(Op::Tmpfs {
        target: new_root.join("tmp"),
        mode: 0o1777,
        uid: 0,
        size: spec.limits.memory,
        skeleton: None,
        noexec: false,
    });
    // root's home: never the host's, whether the host has one or not.
    ops.push(Op::Tmpfs {
        target: new_root.join("root"),
        mode: 0o700,
        uid: 0,
        size: spec.limits.memory,
        skeleton: None,
        noexec: false,
    });
    for dir in ["proc", "sys"] {
        ops.push(Op::Mkdir {
            path: new_root.join(dir),
            uid: 0,
        });
    }
    ops.push(Op::PivotRoot(new_root));
    for path in MASKED {
        ops.push(Op::Mask(p(path)));
    }
    ops
}

/// proc, sysfs and cgroup2 of the sandbox's namespaces, devpts and mqueue,
/// the fixture's overlay, `at=`, the scratch folder, hostname, loopback.
fn kernel_views_and_fixture(spec: &SandboxSpec, ops: &mut Vec<Op>) {
    let p = PathBuf::from;
    ops.push(Op::Proc(p("/proc")));
    if !spec.net_host {
        ops.push(Op::Sysfs(p("/sys")));
    }
    // The sandbox's own cgroup tree, over the host's in a shared network.
    ops.push(Op::Cgroup2(p("/sys/fs/cgroup")));
    // Not under a booted host: seeing AppArmor, LXC moves the host's init
    // to the `unconfined` its configuration asks for; with the mask it
    // would leave it in the `lxc-start` profile, where systemd cannot mount
    // its API file systems and exits ("Failed to mount tmpfs at /dev/shm:
    // Permission denied", "Exiting PID 1"; Debian 12, bench/cgroup-v2-vm.sh).
    // The host hides the flag inside instead (boot.rs), for its own LXC.
    if spec.guest.is_none() {
        ops.push(Op::Mask(p(APPARMOR_ENABLED)));
    }
    ops.push(Op::Devpts(p("/dev/pts")));
    ops.push(Op::Mqueue(p("/dev/mqueue")));
    if spec.lower.is_some() {
        let layers = match &spec.keep {
            Some(_) => Path::new(RUN).join("keep"),
            None => p(RUN),
        };
        for dir in ["upper", "work"] {
            ops.push(Op::Mkdir {
                path: layers.join(dir),
                uid: 0,
            });
        }
        // The topmost layer first, as overlayfs lists them.
        let mut lowers: Vec<PathBuf> = (0..spec.layers.len()).rev().map(layer_path).collect();
        lowers.push(p(BASE));
        ops.push(Op::Overlay {
            lowers,
            upper: layers.join("upper"),
            work: layers.join("work"),
            target: p(ROOTFS),
        });
    }
    if let Some(guest) = &spec.guest {
        guest_fixture(guest, spec.limits.memory, ops);
    }
    if let Some(at) = &spec.at {
        ops.push(Op::Mkdir {
            path: p(at),
            uid: 0,
        });
        ops.push(Op::Bind {
            source: p(ROOTFS),
            target: p(at),
        });
    }
    ops.push(Op::Mkdir {
        path: p(SCRATCH),
        uid: 0,
    });
    ops.push(Op::Hostname(spec.hostname.clone()));
    if !spec.net_host {
        ops.push(Op::LoopbackUp);
    }
}

/// The recipe's own fixture in the booted host's tree: an overlay of its
/// base (or a plain folder for `empty`) at its path there.
fn guest_fixture(guest: &Guest, size: u64, ops: &mut Vec<Op>) {
    // LXC's folder in the booted host is a tmpfs, not part of the host's
    // overlay: an overlay's upper layer (`lxc-copy -s`) cannot lie on one.
    ops.push(Op::Tmpfs {
        target: Path::new(ROOTFS).join(HOST_LXC.trim_start_matches('/')),
        mode: 0o755,
        uid: 0,
        size,
        skeleton: None,
        noexec: false,
    });
    let target = Path::new(ROOTFS).join(guest.path.trim_start_matches('/'));
    ops.push(Op::Mkdir {
        path: target.clone(),
        uid: 0,
    });
    if guest.lower.is_some() {
        let layers = Path::new(RUN).join("guest");
        for dir in ["upper", "work"] {
            ops.push(Op::Mkdir {
                path: layers.join(dir),
                uid: 0,
            });
        }
        ops.push(Op::Overlay {
            lowers: vec![PathBuf::from(GUEST_BASE)],
            upper: layers.join("upper"),
            work: layers.join("work"),
            target,
        });
    }
}

/// Where checkpoint layer `i` is attached inside.
pub fn layer_path(i: usize) -> PathBuf {
    Path::new(RUN).join(format!("layer{i}"))
}

/// The overlay's upper layer inside: what a recipe changed in its fixture.
pub fn upper_path(spec: &SandboxSpec) -> Option<PathBuf> {
    spec.lower.as_ref()?;
    Some(match &spec.keep {
        Some(_) => Path::new(RUN).join("keep/upper"),
        None => Path::new(RUN).join("upper"),
    })
}

/// `$ROOTFS` as steps see it: the `at=` path when there is one.
pub fn rootfs_path(spec: &SandboxSpec) -> String {
    if let Some(guest) = &spec.guest {
        return guest.path.clone();
    }
    spec.at.clone().unwrap_or_else(|| ROOTFS.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SandboxSpec {
        SandboxSpec {
            parent: 1,
            ids: IdRange {
                base: 1 << 30,
                count: 1 << 18,
            },
            lower: Some(PathBuf::from("/cache/bases/debian-sysv/rootfs")),
            layers: Vec::new(),
            rootfs_rw: None,
            keep: None,
            at: None,
            net_host: false,
            cgroups: None,
            limits: Limits::DEFAULT,
            cpu_weight: crate::model::CPU_WEIGHT,
            hostname: "sandbox".into(),
            shares: vec![Share {
                host: "/root/.cache/recipes/rust".into(),
                inside: "/run/recipes/rust".into(),
                writable: false,
            }],
            guest: None,
        }
    }

    fn position(ops: &[Op], pred: impl Fn(&Op) -> bool) -> usize {
        ops.iter().position(pred).expect("operation missing")
    }

    fn tmpfs_at(ops: &[Op], dir: &str) -> usize {
        position(
            ops,
            |o| matches!(o, Op::Tmpfs { target, .. } if target == Path::new(dir)),
        )
    }

    #[test]
    fn bases_are_held_before_the_host_turns_read_only_and_hides_them() {
        let ops = host_ops(&spec());
        assert_eq!(ops[0], Op::MakePrivate);
        let hold = position(&ops, |o| matches!(o, Op::Hold { key, .. } if key == "base"));
        let ro = position(&ops, |o| *o == Op::ReadOnlyTree("/".into()));
        let lxc = tmpfs_at(&ops, "/var/lib/lxc");
        let attach = position(
            &ops,
            |o| matches!(o, Op::Attach { key, .. } if key == "base"),
        );
        assert!(hold < ro && ro < lxc && lxc < attach);
        let Op::Hold { mount, .. } = &ops[hold] else {
            unreachable!()
        };
        assert!(mount.idmap && mount.readonly, "{mount:?}");
    }

    #[test]
    fn host_folders_steps_write_are_fresh_tmpfs_owned_by_the_sandbox_root() {
        let ops = host_ops(&spec());
        let host_made = WRITABLE.iter().filter(|d| d.starts_with("/var/"));
        for dir in host_made.chain(&["/run", "/dev/shm"]) {
            let i = tmpfs_at(&ops, dir);
            let Op::Tmpfs {
                uid,
                size,
                skeleton,
                ..
            } = &ops[i]
            else {
                unreachable!()
            };
            assert_eq!(*uid, 1 << 30, "{dir}");
            assert_eq!(*size, Limits::DEFAULT.memory, "{dir}");
            // Only /var/log keeps the host's folder names: never the host's
            // containers.
            if dir.starts_with("/var/") {
                assert_eq!(skeleton.is_some(), *dir == "/var/log", "{dir}");
            }
        }
        // Made after the host turned read-only, so writable.
        let ro = position(&ops, |o| *o == Op::ReadOnlyTree("/".into()));
        assert!(ro < tmpfs_at(&ops, "/var/log"));
    }

    #[test]
    fn var_is_one_private_overlay_whatever_the_host_holds() {
        let ops = host_ops(&spec());
        let overlays: Vec<&Op> = ops
            .iter()
            .filter(|o| matches!(o, Op::OverlayHost { .. }))
            .collect();
        assert_eq!(
            overlays,
            vec![&Op::OverlayHost {
                dir: VAR.into(),
                layers: Path::new(HIDDEN).join("var"),
            }]
        );
        let overlay = position(&ops, |o| matches!(o, Op::OverlayHost { .. }));
        let read_only = position(&ops, |o| *o == Op::ReadOnlyTree(VAR.into()));
        for dir in WRITABLE.iter().filter(|d| d.starts_with("/var/")) {
            // Made a plain folder (a link to another disk replaced, a missing
            // one made) in the overlay, then read-only, then covered.
            let plain = position(&ops, |o| *o == Op::PlainDir(dir.into()));
            assert!(overlay < plain && plain < read_only, "{dir}");
            assert!(read_only < tmpfs_at(&ops, dir), "{dir}");
        }
        // Nothing else is made on the host side; /root is the sandbox's own.
        assert!(!ops
            .iter()
            .any(|o| matches!(o, Op::Mkdir { path, .. } if path.starts_with(VAR))));
        assert!(!ops
            .iter()
            .any(|o| matches!(o, Op::Tmpfs { target, .. } if target == Path::new("/root"))));
        let inner = inner_ops(&spec());
        let home = Path::new(NEW_ROOT).join("root");
        let Op::Tmpfs { mode, uid, .. } = &inner[tmpfs_at(&inner, home.to_str().unwrap())] else {
            unreachable!()
        };
        assert_eq!((*mode, *uid), (0o700, 0));
        assert!(inner
            .iter()
            .any(|o| matches!(o, Op::MirrorHost { skip, .. } if skip.iter().any(|s| s == "root"))));
    }

    #[test]
    fn host_kernel_views_are_moved_out_of_reach_and_left_writable() {
        let ops = host_ops(&spec());
        let hidden = tmpfs_at(&ops, HIDDEN);
        let Op::Tmpfs { mode, uid, .. } = &ops[hidden] else {
            unreachable!()
        };
        assert_eq!((*mode, *uid), (0o700, 0));
        for view in ["proc", "sys"] {
            let to = Path::new(HIDDEN).join(view);
            let moved = position(&ops, |o| matches!(o, Op::Move { to: t, .. } if *t == to));
            let rw = position(&ops, |o| *o == Op::WritableTree(to.clone()));
            assert!(hidden < moved && moved < rw, "{view}");
        }
    }

    #[test]
    fn shared_network_keeps_the_hosts_sysfs_read_only_and_no_loopback() {
        let s = SandboxSpec {
            net_host: true,
            ..spec()
        };
        let host = host_ops(&s);
        assert!(!host
            .iter()
            .any(|o| matches!(o, Op::Move { from, .. } if from == Path::new("/sys"))));
        // A copy of it out of reach, writable: the fully visible sysfs
        // that an unprivileged container inside needs to mount its own.
        let kept = Path::new(HIDDEN).join("sys");
        let bound = position(&host, |o| {
            *o == Op::Bind {
                source: "/sys".into(),
                target: kept.clone(),
            }
        });
        assert!(bound < position(&host, |o| *o == Op::WritableTree(kept.clone())));
        let inner = inner_ops(&s);
        assert!(!inner.contains(&Op::LoopbackUp));
        assert!(!inner.iter().any(|o| matches!(o, Op::Sysfs(_))));
        let mirrored = inner
            .iter()
            .any(|o| matches!(o, Op::MirrorHost { skip, .. } if !skip.iter().any(|s| s == "sys")));
        assert!(mirrored, "the host's /sys is shown");
    }

    #[test]
    fn only_allowed_device_nodes_reach_the_sandbox() {
        let ops = host_ops(&spec());
        let devices: Vec<(&str, u64, u64)> = ops
            .iter()
            .filter_map(|o| match o {
                Op::Device {
                    path, major, minor, ..
                } => Some((path.to_str()?, *major, *minor)),
                _ => None,
            })
            .collect();
        assert_eq!(
            devices,
            [
                ("/dev/null", 1, 3),
                ("/dev/zero", 1, 5),
                ("/dev/full", 1, 7),
                ("/dev/random", 1, 8),
                ("/dev/urandom", 1, 9),
                ("/dev/tty", 5, 0),
                ("/dev/fuse", 10, 229)
            ]
        );
        let dev = tmpfs_at(&ops, "/dev");
        let Op::Tmpfs { noexec, .. } = &ops[dev] else {
            unreachable!()
        };
        assert!(*noexec);
        assert!(ops
            .iter()
            .enumerate()
            .all(|(i, o)| !matches!(o, Op::Device { .. }) || i > dev));
    }

    #[test]
    fn the_new_root_mirrors_the_host_but_replaces_its_live_folders() {
        let ops = inner_ops(&spec());
        let Op::MirrorHost { to, skip } = &ops[1] else {
            panic!("{:?}", ops[1])
        };
        assert_eq!(to, Path::new(NEW_ROOT));
        for dir in ["proc", "sys", "dev", "run", "tmp"] {
            assert!(skip.iter().any(|s| s == dir), "{dir}");
        }
        let pivot = position(&ops, |o| matches!(o, Op::PivotRoot(_)));
        let run = tmpfs_at(&ops, "/run/newroot/run");
        let tmp = tmpfs_at(&ops, "/run/newroot/tmp");
        let proc_ = position(&ops, |o| matches!(o, Op::Proc(_)));
        assert!(run < pivot && tmp < pivot && pivot < proc_);
        // The sandbox's files and the hidden host views come along.
        for dir in ["/run/recipes", "/run/.host"] {
            assert!(ops.contains(&Op::Bind {
                source: dir.into(),
                target: Path::new(NEW_ROOT).join(&dir[1..]),
            }));
        }
    }

    #[test]
    fn overlay_layers_live_in_the_sandbox_unless_kept() {
        let ops = inner_ops(&spec());
        assert!(ops.contains(&Op::Overlay {
            lowers: vec![BASE.into()],
            upper: "/run/recipes/upper".into(),
            work: "/run/recipes/work".into(),
            target: ROOTFS.into(),
        }));
        let kept = SandboxSpec {
            keep: Some("/var/tmp/k".into()),
            ..spec()
        };
        assert!(inner_ops(&kept).iter().any(
            |o| matches!(o, Op::Overlay { upper, .. } if upper == Path::new("/run/recipes/keep/upper"))
        ));
        assert!(host_ops(&kept).contains(&Op::Attach {
            key: "keep".into(),
            target: "/run/recipes/keep".into()
        }));
    }

    #[test]
    fn checkpoint_layers_stack_above_the_base_idmapped_and_read_only() {
        let s = SandboxSpec {
            layers: vec![
                "/cache/layers/a/upper".into(),
                "/cache/layers/b/upper".into(),
            ],
            ..spec()
        };
        let host = host_ops(&s);
        for i in 0..2 {
            let hold = position(
                &host,
                |o| matches!(o, Op::Hold { key, .. } if *key == format!("layer{i}")),
            );
            let Op::Hold { mount, .. } = &host[hold] else {
                unreachable!()
            };
            assert!(mount.idmap && mount.readonly);
            assert!(host.contains(&Op::Attach {
                key: format!("layer{i}"),
                target: layer_path(i),
            }));
        }
        assert!(inner_ops(&s).iter().any(|o| matches!(
            o,
            Op::Overlay { lowers, .. } if *lowers == [layer_path(1), layer_path(0), BASE.into()]
        )));
        assert_eq!(upper_path(&s), Some("/run/recipes/upper".into()));
    }

    #[test]
    fn at_binds_the_fixture_after_it_exists() {
        let s = SandboxSpec {
            at: Some("/var/lib/lxc/web1/rootfs".into()),
            ..spec()
        };
        let ops = inner_ops(&s);
        let overlay = position(&ops, |o| matches!(o, Op::Overlay { .. }));
        let bind = position(
            &ops,
            |o| matches!(o, Op::Bind { target, .. } if target == Path::new("/var/lib/lxc/web1/rootfs")),
        );
        assert!(overlay < bind);
        assert_eq!(rootfs_path(&s), "/var/lib/lxc/web1/rootfs");
    }

    #[test]
    fn empty_fixture_is_a_plain_folder_and_a_base_being_built_is_shown_writable() {
        let s = SandboxSpec {
            lower: None,
            ..spec()
        };
        assert!(!inner_ops(&s)
            .iter()
            .any(|o| matches!(o, Op::Overlay { .. })));
        let building = SandboxSpec {
            lower: None,
            rootfs_rw: Some("/cache/bases/.x.partial/rootfs".into()),
            ..spec()
        };
        let ops = host_ops(&building);
        let hold = position(
            &ops,
            |o| matches!(o, Op::Hold { key, .. } if key == "rootfs"),
        );
        let Op::Hold { mount, .. } = &ops[hold] else {
            unreachable!()
        };
        assert!(mount.idmap && !mount.readonly);
        assert!(ops.contains(&Op::Attach {
            key: "rootfs".into(),
            target: ROOTFS.into()
        }));
    }

    #[test]
    fn proc_comes_before_sysfs_and_sysfs_before_cgroups() {
        let ops = inner_ops(&spec());
        let proc_ = position(&ops, |o| matches!(o, Op::Proc(_)));
        let sysfs = position(&ops, |o| matches!(o, Op::Sysfs(_)));
        let cgroup = position(&ops, |o| matches!(o, Op::Cgroup2(_)));
        assert!(proc_ < sysfs && sysfs < cgroup);
    }

    #[test]
    fn apparmor_reads_as_off_inside_except_under_a_booted_host() {
        let mut host_net = spec();
        host_net.net_host = true;
        for s in [spec(), host_net] {
            let ops = inner_ops(&s);
            let mask = position(&ops, |o| *o == Op::Mask(APPARMOR_ENABLED.into()));
            // After whatever /sys is: the sandbox's sysfs, or the host's
            // mirrored one (net=host), which a mask covers the same way.
            let pivot = position(&ops, |o| matches!(o, Op::PivotRoot(_)));
            assert!(pivot < mask);
            if let Some(sysfs) = ops.iter().position(|o| matches!(o, Op::Sysfs(_))) {
                assert!(sysfs < mask);
            }
        }
        let mut booted = spec();
        booted.guest = Some(Guest {
            lower: None,
            path: GUEST_DEFAULT.into(),
        });
        assert!(!inner_ops(&booted).contains(&Op::Mask(APPARMOR_ENABLED.into())));
    }
}
