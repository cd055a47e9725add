//! Applies a sandbox plan to the running Linux system: mounts, device nodes,
//! hostname, loopback. Called only in the freshly exec'd, single-threaded
//! sandbox helper.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use super::plan::Op;

/// Applies operations; the seam between the plan and the kernel.
pub trait System {
    fn apply(&mut self, op: &Op) -> std::io::Result<()>;
}

/// Applies every operation in order; the first failure names its operation.
pub fn apply_all(system: &mut dyn System, ops: &[Op]) -> Result<(), String> {
    for op in ops {
        system
            .apply(op)
            .map_err(|e| format!("sandbox setup failed at {op:?}: {e}"))?;
    }
    Ok(())
}

/// The real kernel.
#[derive(Default)]
pub struct Linux {
    /// Folders held by [`Op::Hold`], by path.
    held: std::collections::BTreeMap<std::path::PathBuf, std::os::fd::OwnedFd>,
}

fn none() -> Option<&'static str> {
    None
}

fn bind(source: &Path, target: &Path, readonly: bool) -> nix::Result<()> {
    mount(
        Some(source),
        target,
        none(),
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none(),
    )?;
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    if readonly {
        flags |= MsFlags::MS_RDONLY;
    }
    mount(none(), target, none(), flags, none())
}

fn create_target(source: &Path, target: &Path) -> std::io::Result<()> {
    if target.exists() || target.is_symlink() {
        return Ok(());
    }
    if source.is_dir() {
        std::fs::create_dir_all(target)
    } else {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::File::create(target).map(drop)
    }
}

impl System for Linux {
    fn apply(&mut self, op: &Op) -> std::io::Result<()> {
        let fs = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        match op {
            Op::MakePrivate => mount(
                none(),
                "/",
                none(),
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                none(),
            )?,
            Op::ReadOnlyTree(path) => read_only_tree(path)?,
            Op::Tmpfs { target, mode } => {
                let flags = if target == Path::new("/dev") {
                    MsFlags::MS_NOSUID
                } else {
                    MsFlags::empty()
                };
                std::fs::create_dir_all(target).or_else(|e| {
                    if target.is_dir() {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })?;
                mount(
                    Some("tmpfs"),
                    target,
                    Some("tmpfs"),
                    flags,
                    Some(format!("mode={mode:o}").as_str()),
                )?
            }
            Op::TmpfsSkeleton { target } => {
                let skeleton = folders(target, 3);
                let mode =
                    std::fs::metadata(target).map_or(0o755, |m| m.permissions().mode() & 0o7777);
                mount(
                    Some("tmpfs"),
                    target,
                    Some("tmpfs"),
                    MsFlags::empty(),
                    Some(format!("mode={mode:o}").as_str()),
                )?;
                for (dir, mode) in skeleton {
                    std::fs::create_dir_all(&dir)?;
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))?;
                }
            }
            Op::Hold(path) => {
                // O_PATH: a handle that survives the folder being hidden.
                if let Ok(fd) = nix::fcntl::open(
                    path,
                    nix::fcntl::OFlag::O_PATH
                        | nix::fcntl::OFlag::O_DIRECTORY
                        | nix::fcntl::OFlag::O_CLOEXEC,
                    Mode::empty(),
                ) {
                    self.held.insert(path.clone(), fd);
                }
            }
            Op::Restore(path) => {
                if let Some(fd) = self.held.get(path) {
                    let source = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(fd));
                    std::fs::create_dir_all(path)?;
                    bind(Path::new(&source), path, true)?;
                }
            }
            Op::Mkdir(path) => std::fs::create_dir_all(path)?,
            Op::CharDevice { path, major, minor } => {
                mknod(
                    path,
                    SFlag::S_IFCHR,
                    Mode::from_bits_truncate(0o666),
                    makedev(*major, *minor),
                )?;
                // mknod honours the umask; the nodes are for everyone.
                nix::sys::stat::fchmodat(
                    nix::fcntl::AT_FDCWD,
                    path,
                    Mode::from_bits_truncate(0o666),
                    nix::sys::stat::FchmodatFlags::FollowSymlink,
                )?;
            }
            Op::Bind {
                source,
                target,
                readonly,
            } => {
                create_target(source, target)?;
                bind(source, target, *readonly)?
            }
            Op::ReadOnly(path) | Op::Writable(path) => {
                if path.exists() {
                    bind(path, path, matches!(op, Op::ReadOnly(_)))?
                }
            }
            Op::Proc(target) => mount(Some("proc"), target, Some("proc"), fs, none())?,
            Op::Sysfs(target) => mount(
                Some("sysfs"),
                target,
                Some("sysfs"),
                fs | MsFlags::MS_RDONLY,
                none(),
            )?,
            Op::Cgroup2(target) => mount(Some("cgroup2"), target, Some("cgroup2"), fs, none())?,
            Op::Devpts(target) => {
                std::fs::create_dir_all(target)?;
                mount(
                    Some("devpts"),
                    target,
                    Some("devpts"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
                    Some("newinstance,ptmxmode=0666,mode=0620"),
                )?
            }
            Op::Mqueue(target) => {
                std::fs::create_dir_all(target)?;
                mount(Some("mqueue"), target, Some("mqueue"), fs, none())?
            }
            Op::Symlink { target, link } => symlink(target, link)?,
            Op::Overlay {
                lower,
                upper,
                work,
                target,
            } => {
                let options = format!(
                    "lowerdir={},upperdir={},workdir={}",
                    lower.display(),
                    upper.display(),
                    work.display()
                );
                mount(
                    Some("overlay"),
                    target,
                    Some("overlay"),
                    MsFlags::empty(),
                    Some(options.as_str()),
                )?
            }
            Op::Hostname(name) => nix::unistd::sethostname(name)?,
            Op::LoopbackUp => loopback_up()?,
        }
        Ok(())
    }
}

/// Sub-folders of `root` (not following links), parents first, with modes.
fn folders(root: &Path, depth: usize) -> Vec<(std::path::PathBuf, u32)> {
    let mut found = Vec::new();
    if depth == 0 {
        return found;
    }
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        if meta.is_dir() {
            found.push((entry.path(), meta.permissions().mode() & 0o7777));
            found.extend(folders(&entry.path(), depth - 1));
        }
    }
    found
}

/// `mount_setattr(2)` with `AT_RECURSIVE`: every mount under `path` becomes
/// read-only in this mount namespace, in one call.
fn read_only_tree(path: &Path) -> std::io::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())?;
    // SAFETY: the path is a valid NUL-terminated string and `attr` a valid
    // `struct mount_attr` of the size passed; the kernel only reads them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c_path.as_ptr(),
            libc::AT_RECURSIVE as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Brings `lo` up in the new network namespace.
fn loopback_up() -> std::io::Result<()> {
    // SAFETY: plain socket(2); the descriptor is owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let socket = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&socket);
    // SAFETY: an all-zero ifreq is valid; we set the name and read flags.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own.
    unsafe {
        if libc::ioctl(raw, libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(raw, libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what would be applied; fails at a chosen operation.
    struct Recording {
        applied: Vec<Op>,
        fail_at: Option<usize>,
    }

    impl System for Recording {
        fn apply(&mut self, op: &Op) -> std::io::Result<()> {
            if self.fail_at == Some(self.applied.len()) {
                return Err(std::io::Error::from_raw_os_error(libc::EPERM));
            }
            self.applied.push(op.clone());
            Ok(())
        }
    }

    #[test]
    fn applies_in_order_and_stops_at_the_first_failure() {
        let ops = vec![Op::MakePrivate, Op::Mkdir("/a".into()), Op::LoopbackUp];
        let mut rec = Recording {
            applied: vec![],
            fail_at: None,
        };
        apply_all(&mut rec, &ops).unwrap();
        assert_eq!(rec.applied, ops);
        let mut rec = Recording {
            applied: vec![],
            fail_at: Some(1),
        };
        let err = apply_all(&mut rec, &ops).unwrap_err();
        assert!(err.contains("Mkdir(\"/a\")"), "{err}");
        assert_eq!(rec.applied, vec![Op::MakePrivate]);
    }
}
