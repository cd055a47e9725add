//! The sandbox's user namespace: root inside is an unprivileged range of
//! host ids, one range per live sandbox (a slot, held by a file lock in the
//! cache), so two sandboxes never share an id, and none is the host's.
//!
//! Slots cover host ids `0x6000_0000..0x7000_0000`, the top of the range
//! systemd sets aside for containers; each maps 262,144 ids, enough for an
//! unprivileged LXC container inside (its usual `100000 65536`).

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};

use super::plan::IdRange;

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
