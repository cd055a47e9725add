//! Applies a sandbox plan to the running Linux system: mounts (the new
//! mount API for detached, idmapped copies), device nodes, hostname,
//! loopback. Called only in the freshly exec'd, single-threaded helpers.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

use super::ops::{MountSource, Op};

/// Applies operations; the seam between the plans and the kernel.
pub trait System {
    fn apply(&mut self, op: &Op) -> std::io::Result<()>;
}

/// A setup operation that failed: what could not be done, where, the
/// kernel's words and the likely cause.
#[derive(Debug, thiserror::Error)]
#[error("the sandbox could not be set up: cannot {op}: {source}{}", cause(.source))]
pub struct SetupError {
    /// The operation, as a sentence ([`Op`]'s `Display`).
    pub op: String,
    pub source: std::io::Error,
}

/// The likely cause of a setup error, from the kernel's error code.
fn cause(error: &std::io::Error) -> &'static str {
    match error.raw_os_error() {
        Some(libc::EROFS | libc::EACCES) => {
            " (the host is read-only in the sandbox, but for its own /tmp, /run, /var/tmp, /var/log, /var/lib/lxc, /var/cache/lxc, /var/lib/lxcfs and /root: a path outside them, or a link out of them, cannot be written)"
        }
        Some(libc::EPERM) => {
            " (the kernel refused it to the sandbox's user namespace; `recipes doctor` checks what the sandbox needs)"
        }
        Some(libc::ENOSPC) => " (no space left: the disk of the cache, or the sandbox's memory limit for its tmpfs folders)",
        Some(libc::ENODEV) => {
            " (the kernel lacks this file system; `recipes doctor` names what is missing)"
        }
        _ => "",
    }
}

/// Applies every operation in order; the first failure names its operation.
pub fn apply_all(system: &mut dyn System, ops: &[Op]) -> Result<(), SetupError> {
    for op in ops {
        system.apply(op).map_err(|source| SetupError {
            op: op.to_string(),
            source,
        })?;
    }
    Ok(())
}

/// The real kernel.
#[derive(Default)]
pub struct Linux {
    /// Detached mounts kept by [`Op::Hold`], by key.
    held: BTreeMap<String, OwnedFd>,
    /// The sandbox's user namespace, for idmapped mounts.
    userns: Option<OwnedFd>,
}

impl Linux {
    /// The kernel, making idmapped mounts for the user namespace `userns`.
    pub fn with_userns(userns: OwnedFd) -> Linux {
        Linux {
            held: BTreeMap::new(),
            userns: Some(userns),
        }
    }
}

fn none() -> Option<&'static str> {
    None
}

fn cstr(path: &Path) -> std::io::Result<CString> {
    Ok(CString::new(path.as_os_str().as_encoded_bytes())?)
}

fn check(rc: libc::c_long) -> std::io::Result<libc::c_long> {
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(2)` on `dirfd`+`path` (rustix does not wrap it yet).
fn mount_setattr(
    dirfd: libc::c_int,
    path: &Path,
    flags: libc::c_uint,
    attr: &MountAttr,
) -> std::io::Result<()> {
    let c_path = cstr(path)?;
    // SAFETY: the path is a valid NUL-terminated string and `attr` a valid
    // `struct mount_attr` of the size passed; the kernel only reads them.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            c_path.as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(drop)
}

/// Sets or clears read-only on every mount under `path`.
fn read_only_tree(path: &Path, readonly: bool) -> std::io::Result<()> {
    let attr = MountAttr {
        attr_set: if readonly { MOUNT_ATTR_RDONLY } else { 0 },
        attr_clr: if readonly { 0 } else { MOUNT_ATTR_RDONLY },
        propagation: 0,
        userns_fd: 0,
    };
    mount_setattr(libc::AT_FDCWD, path, libc::AT_RECURSIVE as _, &attr)
}

/// A detached copy of the mount at `mount.source`, idmapped through
/// `userns` and made read-only as asked, before anything is attached: the
/// sandbox can never see it otherwise.
fn detached_copy(mount: &MountSource, userns: Option<&OwnedFd>) -> std::io::Result<OwnedFd> {
    use rustix::mount::OpenTreeFlags;
    let fd = rustix::mount::open_tree(
        rustix::fs::CWD,
        &mount.source,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )?;
    let mut attr = MountAttr {
        attr_set: 0,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    if mount.readonly {
        attr.attr_set |= MOUNT_ATTR_RDONLY;
    }
    if mount.idmap {
        let userns = userns.ok_or_else(|| {
            std::io::Error::other("an idmapped mount needs the sandbox's user namespace")
        })?;
        attr.attr_set |= MOUNT_ATTR_IDMAP;
        attr.userns_fd = userns.as_raw_fd() as u64;
    }
    if attr.attr_set != 0 {
        mount_setattr(
            fd.as_raw_fd(),
            Path::new(""),
            libc::AT_EMPTY_PATH as _,
            &attr,
        )?;
    }
    Ok(fd)
}

/// A detached copy of the mount at `dir`, idmapped through `userns` and
/// read-only: what the helper makes of a fixture's base, made here for
/// `recipes doctor` to try on the cache's file system. Never attached.
pub fn idmapped_view(dir: &Path, userns: &OwnedFd) -> std::io::Result<OwnedFd> {
    let mount = MountSource {
        source: dir.to_path_buf(),
        idmap: true,
        readonly: true,
    };
    detached_copy(&mount, Some(userns))
}

/// Attaches a detached mount at `target`.
fn attach(fd: &OwnedFd, target: &Path) -> std::io::Result<()> {
    Ok(rustix::mount::move_mount(
        fd,
        "",
        rustix::fs::CWD,
        target,
        rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?)
}

/// An overlay option value: `\`, `,` and `:` are escaped.
fn escape(path: &Path) -> String {
    let mut out = String::new();
    for c in path.display().to_string().chars() {
        if matches!(c, '\\' | ',' | ':') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An overlay; `user_xattr` when mounted inside a user namespace, where the
/// `trusted.*` attributes overlayfs uses by default are the host root's.
fn overlay(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    user_xattr: bool,
) -> nix::Result<()> {
    let lowers: Vec<String> = lowers.iter().map(|l| escape(l)).collect();
    let mut options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowers.join(":"),
        escape(upper),
        escape(work)
    );
    if user_xattr {
        options.push_str(",userxattr");
    }
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
}

fn chown(path: &Path, uid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid))
}

impl System for Linux {
    fn apply(&mut self, op: &Op) -> std::io::Result<()> {
        match op {
            // The mount tree: propagation, read-only trees, moves, binds.
            Op::MakePrivate => mount(
                none(),
                "/",
                none(),
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                none(),
            )?,
            Op::ReadOnlyTree(path) => read_only_tree(path, true)?,
            Op::WritableTree(path) => read_only_tree(path, false)?,
            Op::Move { from, to } => mount(Some(from), to, none(), MsFlags::MS_MOVE, none())?,
            Op::Bind { source, target } => mount(
                Some(source),
                target,
                none(),
                MsFlags::MS_BIND | MsFlags::MS_REC,
                none(),
            )?,
            Op::Mask(path) => {
                if path.exists() {
                    mount(Some("/dev/null"), path, none(), MsFlags::MS_BIND, none())?
                }
            }
            Op::MirrorHost { to, skip } => mirror_host(to, skip)?,
            Op::PivotRoot(new_root) => pivot_root(new_root)?,
            // Copies of mounts, held by key, then attached.
            Op::Hold { key, mount } => {
                let fd = detached_copy(mount, self.userns.as_ref())?;
                self.held.insert(key.clone(), fd);
            }
            Op::Attach { key, target } => self.attach_held(key, target)?,
            // Writable layers.
            Op::Tmpfs {
                target,
                mode,
                uid,
                size,
                skeleton,
                noexec,
            } => tmpfs(target, *mode, *uid, *size, skeleton.as_deref(), *noexec)?,
            Op::OverlayHost { dir, layers } => overlay_host(dir, layers)?,
            Op::Overlay {
                lowers,
                upper,
                work,
                target,
            } => overlay(lowers, upper, work, target, true)?,
            // Files, folders and device nodes.
            Op::PlainDir(path) => plain_dir(path)?,
            Op::Mkdir { path, uid } => {
                if !path.is_dir() {
                    std::fs::create_dir_all(path)?;
                    chown(path, *uid)?;
                }
            }
            Op::Device {
                path,
                major,
                minor,
                uid,
            } => device(path, *major, *minor, *uid)?,
            Op::Symlink { target, link } => symlink(target, link)?,
            // The namespaces' own state.
            Op::Hostname(name) => nix::unistd::sethostname(name)?,
            Op::LoopbackUp => loopback_up()?,
            // The kernel's own file systems.
            Op::Proc(target)
            | Op::Sysfs(target)
            | Op::Cgroup2(target)
            | Op::Devpts(target)
            | Op::Mqueue(target) => kernel_fs(op, target)?,
        }
        Ok(())
    }
}

impl Linux {
    /// Attaches the copy held as `key` at `target`.
    fn attach_held(&mut self, key: &str, target: &Path) -> std::io::Result<()> {
        let fd = self
            .held
            .remove(key)
            .ok_or_else(|| std::io::Error::other(format!("nothing was held as `{key}`")))?;
        if !target.exists() {
            // A device node is bound onto an empty file.
            std::fs::File::create(target)?;
        }
        attach(&fd, target)
    }
}

/// Mounts at `target` the kernel file system `op` asks for, with its flags
/// and options.
fn kernel_fs(op: &Op, target: &Path) -> std::io::Result<()> {
    let fs = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let (fstype, flags, data) = match op {
        Op::Proc(_) => ("proc", fs, None),
        Op::Sysfs(_) => ("sysfs", fs | MsFlags::MS_RDONLY, None),
        Op::Cgroup2(_) => ("cgroup2", fs, None),
        Op::Devpts(_) => (
            "devpts",
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
        ),
        Op::Mqueue(_) => ("mqueue", fs, None),
        other => {
            return Err(std::io::Error::other(format!(
                "not a kernel file system: {other}"
            )))
        }
    };
    Ok(mount(Some(fstype), target, Some(fstype), flags, data)?)
}

/// A fresh tmpfs at `target` (see [`Op::Tmpfs`]), with the folders of
/// `skeleton` made again in it.
fn tmpfs(
    target: &Path,
    mode: u32,
    uid: u32,
    size: u64,
    skeleton: Option<&Path>,
    noexec: bool,
) -> std::io::Result<()> {
    let folders = skeleton.map(|from| folders(from, 3)).unwrap_or_default();
    let mut flags = MsFlags::MS_NOSUID;
    if target != Path::new("/dev") {
        flags |= MsFlags::MS_NODEV;
    }
    if noexec {
        flags |= MsFlags::MS_NOEXEC;
    }
    if !target.is_dir() {
        std::fs::create_dir_all(target)?;
    }
    let options = format!("mode={mode:o},uid={uid},gid={uid},size={size}");
    mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        flags,
        Some(options.as_str()),
    )?;
    for (rel, mode) in folders {
        let dir = target.join(rel);
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))?;
        chown(&dir, uid)?;
    }
    Ok(())
}

/// A private, writable overlay of the host folder `dir`, its changes in
/// `layers`.
fn overlay_host(dir: &Path, layers: &Path) -> std::io::Result<()> {
    for sub in ["upper", "work"] {
        std::fs::create_dir_all(layers.join(sub))?;
    }
    Ok(overlay(
        std::slice::from_ref(&dir.to_path_buf()),
        &layers.join("upper"),
        &layers.join("work"),
        dir,
        false,
    )?)
}

/// A character device node, mode 0666, owned by `uid`.
fn device(path: &Path, major: u64, minor: u64, uid: u32) -> std::io::Result<()> {
    let mode = nix::sys::stat::Mode::from_bits_truncate(0o666);
    nix::sys::stat::mknod(
        path,
        nix::sys::stat::SFlag::S_IFCHR,
        mode,
        nix::sys::stat::makedev(major, minor),
    )?;
    // mknod honours the umask; the nodes are for everyone.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    chown(path, uid)
}

/// Sub-folders of `root` (not following links, not crossing into other
/// mounts), parents first, relative to it, with their modes.
fn folders(root: &Path, depth: usize) -> Vec<(PathBuf, u32)> {
    use std::os::unix::fs::MetadataExt;
    let Ok(device) = std::fs::metadata(root).map(|m| m.dev()) else {
        return Vec::new();
    };
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .max_depth(depth)
        .same_file_system(true)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_dir())
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            if meta.dev() != device {
                return None;
            }
            let rel = e.path().strip_prefix(root).ok()?.to_path_buf();
            Some((rel, meta.permissions().mode() & 0o7777))
        })
        .collect()
}

/// Makes `path` a plain folder: a link or file there is removed (in the
/// private overlay it lies in), a missing one made with its parents.
fn plain_dir(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => std::fs::remove_file(path)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(path)
}

/// Binds every top folder of `/` into `to` (recursively, so the mounts
/// below come along, locked as they are), recreates its links, binds its
/// files; skips `skip`.
fn mirror_host(to: &Path, skip: &[String]) -> std::io::Result<()> {
    for entry in std::fs::read_dir("/")? {
        let entry = entry?;
        let name = entry.file_name();
        if skip.iter().any(|s| name == s.as_str()) {
            continue;
        }
        let source = entry.path();
        let target = to.join(&name);
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            symlink(std::fs::read_link(&source)?, &target)?;
            continue;
        }
        if kind.is_dir() {
            std::fs::create_dir(&target)?;
        } else {
            std::fs::File::create(&target)?;
        }
        mount(
            Some(&source),
            &target,
            none(),
            MsFlags::MS_BIND | MsFlags::MS_REC,
            none(),
        )?;
    }
    Ok(())
}

/// `pivot_root(new_root, new_root)`, then the old root is detached: only
/// what was bound into the new one stays in the namespace.
fn pivot_root(new_root: &Path) -> std::io::Result<()> {
    nix::unistd::chdir(new_root)?;
    nix::unistd::pivot_root(".", ".")?;
    nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH)?;
    nix::unistd::chdir("/")?;
    Ok(())
}

/// Brings `lo` up in the new network namespace.
fn loopback_up() -> std::io::Result<()> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let socket = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    let raw = socket.as_raw_fd();
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
        let ops = vec![
            Op::MakePrivate,
            Op::Mkdir {
                path: "/a".into(),
                uid: 0,
            },
            Op::LoopbackUp,
        ];
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
        let err = apply_all(&mut rec, &ops).unwrap_err().to_string();
        assert!(err.contains("cannot make the folder /a:"), "{err}");
        assert!(!err.contains("Mkdir"), "no debug struct: {err}");
        assert_eq!(rec.applied, vec![Op::MakePrivate]);
    }

    #[test]
    fn overlay_options_escape_their_separators() {
        assert_eq!(escape(Path::new("/a,b:c\\d")), "/a\\,b\\:c\\\\d");
        assert_eq!(escape(Path::new("/plain/path")), "/plain/path");
    }
}
