//! The sandbox's user namespace: root inside is an unprivileged range of
//! host ids, one range per live sandbox (a slot, held by a file lock in the
//! cache), so two sandboxes never share an id, and none is the host's.
//!
//! Slots cover host ids `0x6000_0000..0x7000_0000`, the top of the range
//! systemd sets aside for containers; each maps 262,144 ids, enough for an
//! unprivileged LXC container inside (its usual `100000 65536`).

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};

use super::ops::IdRange;

/// First host id of slot 0.
pub const FIRST: u32 = 0x6000_0000;
/// Ids a sandbox maps.
pub const COUNT: u32 = 0x4_0000;
/// Slots available at once.
pub const SLOTS: u32 = 1024;
// Room inside for an unprivileged container's usual `100000 65536`.
const _: () = assert!(COUNT > 165_536);

/// A held range of host ids; released when dropped.
#[derive(Debug)]
pub struct Slot {
    pub ids: IdRange,
    _lock: File,
}

/// Why no slot could be had.
#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    #[error("cannot create {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("all {SLOTS} id ranges are in use by running sandboxes")]
    Exhausted,
}

impl Slot {
    /// The first free slot, locked in `dir`.
    pub fn acquire(dir: &Path) -> Result<Slot, SlotError> {
        std::fs::create_dir_all(dir).map_err(|source| SlotError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        // Start where this process's pid points, so concurrent runners
        // rarely contend for the same lock file.
        let start = std::process::id() % SLOTS;
        for i in 0..SLOTS {
            let n = (start + i) % SLOTS;
            let path = dir.join(n.to_string());
            let file = File::create(&path).map_err(|source| SlotError::Io {
                path: path.clone(),
                source,
            })?;
            if file.try_lock().is_ok() {
                return Ok(Slot {
                    ids: IdRange {
                        base: FIRST + n * COUNT,
                        count: COUNT,
                    },
                    _lock: file,
                });
            }
        }
        Err(SlotError::Exhausted)
    }
}

/// The text of `uid_map` and `gid_map` for `ids`.
pub fn map_line(ids: IdRange) -> String {
    format!("0 {} {}\n", ids.base, ids.count)
}

/// Writes the maps of the process `pid`, which has just made its user
/// namespace (from the parent namespace, as the host's root).
pub fn write_maps(pid: i32, ids: IdRange) -> std::io::Result<()> {
    let line = map_line(ids);
    for file in ["uid_map", "gid_map"] {
        std::fs::write(format!("/proc/{pid}/{file}"), &line)?;
    }
    Ok(())
}

/// Why a user namespace with a sandbox's maps could not be made.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {source}")]
pub struct NamespaceError {
    /// What failed, as the kernel was asked (`unshare(CLONE_NEWUSER)`).
    pub step: String,
    pub source: std::io::Error,
}

/// A user namespace whose ids `0..ids.count` are the host's `ids`, held
/// only by the returned descriptor: a child makes it, the host's root
/// writes its maps (as the sandbox's helper does), and the child leaves.
/// For `recipes doctor`, which tries idmapped mounts with it.
pub fn mapped_namespace(ids: IdRange) -> Result<OwnedFd, NamespaceError> {
    let fail = |step: &str| {
        let step = step.to_string();
        move |source| NamespaceError { step, source }
    };
    let pipe = || {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| fail("pipe")(std::io::Error::from(e)))
    };
    let (up_r, up_w) = pipe()?;
    let (down_r, down_w) = pipe()?;
    // SAFETY: the child makes only async-signal-safe system calls
    // (unshare, write, read, _exit) and allocates nothing, so forking a
    // process that may have other threads is sound.
    match unsafe { nix::unistd::fork() }.map_err(|e| fail("fork")(e.into()))? {
        nix::unistd::ForkResult::Child => {
            // SAFETY: plain system calls on descriptors this child owns.
            unsafe {
                // Its copy of the parent's ends would hold the pipe open.
                libc::close(up_r.as_raw_fd());
                libc::close(down_w.as_raw_fd());
                let errno = if libc::unshare(libc::CLONE_NEWUSER) == 0 {
                    0
                } else {
                    *libc::__errno_location()
                };
                let bytes = errno.to_ne_bytes();
                libc::write(up_w.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
                let mut byte = 0u8;
                // Held until the parent has opened the namespace.
                libc::read(down_r.as_raw_fd(), (&raw mut byte).cast(), 1);
                libc::_exit(0)
            }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(up_w);
            drop(down_r);
            let made = namespace_of(child.as_raw(), ids, up_r);
            // The child leaves once its end of the pipe closes.
            drop(down_w);
            let _ = nix::sys::wait::waitpid(child, None);
            made
        }
    }
}

/// The parent's side of [`mapped_namespace`]: waits for the child's user
/// namespace, maps it and opens it.
fn namespace_of(pid: i32, ids: IdRange, up: OwnedFd) -> Result<OwnedFd, NamespaceError> {
    let mut bytes = [0u8; 4];
    std::fs::File::from(up)
        .read_exact(&mut bytes)
        .map_err(|source| NamespaceError {
            step: "the child making the user namespace".into(),
            source,
        })?;
    match i32::from_ne_bytes(bytes) {
        0 => {}
        errno => {
            return Err(NamespaceError {
                step: "unshare(CLONE_NEWUSER)".into(),
                source: std::io::Error::from_raw_os_error(errno),
            })
        }
    }
    write_maps(pid, ids).map_err(|source| NamespaceError {
        step: format!("writing `{}` to /proc/{pid}/uid_map", map_line(ids).trim()),
        source,
    })?;
    let path = format!("/proc/{pid}/ns/user");
    let file = File::open(&path).map_err(|source| NamespaceError {
        step: format!("opening {path}"),
        source,
    })?;
    Ok(file.into())
}

/// Becomes root of the user namespace just joined (ids, groups).
pub fn become_root() -> nix::Result<()> {
    setgroups(&[])?;
    setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))?;
    setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_distinct_ranges_above_every_ordinary_id() {
        let dir = tempfile::tempdir().unwrap();
        let a = Slot::acquire(dir.path()).unwrap();
        let b = Slot::acquire(dir.path()).unwrap();
        assert_ne!(a.ids.base, b.ids.base);
        for s in [&a, &b] {
            assert!(s.ids.base >= FIRST);
            assert!(s.ids.base + s.ids.count <= FIRST + SLOTS * COUNT);
            assert_eq!(s.ids.count, COUNT);
        }
        let base = a.ids.base;
        drop(a);
        // A released slot is free again.
        let c = Slot::acquire(dir.path()).unwrap();
        assert_eq!(c.ids.base, base);
    }

    #[test]
    fn maps_put_root_at_the_base() {
        let line = map_line(IdRange {
            base: FIRST,
            count: COUNT,
        });
        assert_eq!(line, "0 1610612736 262144\n");
    }
}
