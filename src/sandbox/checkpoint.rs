//! Checkpoint layers: the upper layer of a sandbox's overlay, copied into
//! the cache once a prerequisite chain has run, with the sandbox's ids
//! shifted back to `0..` (layers are shown idmapped, like bases, in any id
//! slot), built aside and renamed into place, so a concurrent run or an
//! interrupted copy never leaves a half-made layer in use. Beside the layer:
//! an archive of the files the chain wrote outside the fixture
//! ([`plan::KEPT`], made and unpacked by `tar` inside the sandboxes) and
//! its network.
//!
//! [`plan::KEPT`]: super::ops::KEPT

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::network::{Network, NetworkError};
use super::ops::IdRange;
use crate::checkpoint::store;
use crate::fsutil::FsError;

/// Why a checkpoint could not be kept, or brought back in a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("its fixture has no overlay to keep")]
    NoOverlay,
    /// Processes left in the sandbox's PID namespace, by command name.
    #[error("it leaves processes running ({})", .0.join(", "))]
    Processes(Vec<String>),
    #[error("it leaves its mounts changed")]
    Mounts,
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// A command run inside the sandbox (`tar`, `ip`, `nft`) that could
    /// not start.
    #[error("cannot run {program}: {source}")]
    Run {
        program: String,
        source: std::io::Error,
    },
    /// A command run inside the sandbox that failed, with its stderr.
    #[error("`{command}` failed in the sandbox ({status}): {stderr}")]
    Failed {
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    /// The archive of the files outside the fixture.
    #[error("cannot keep the files outside the fixture: {0}")]
    Files(Box<CheckpointError>),
    #[error("a checkpoint needs a parent folder")]
    NoParent,
    #[error("cannot run cp: {0}")]
    Cp(std::io::Error),
    /// `cp` failed, with its stderr.
    #[error("cannot copy the fixture's changes: {0}")]
    Copy(String),
    #[error("{0}")]
    Walk(#[from] walkdir::Error),
    /// A file of the layer that cannot be looked at: the kernel's words
    /// only (the path is kept, not said).
    #[error("{source}")]
    Metadata {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    NetworkJson(serde_json::Error),
    #[error("cannot keep the network: {0}")]
    KeepNetwork(std::io::Error),
    #[error("cannot move the checkpoint to {}", .0.display())]
    Move(PathBuf),
    #[error("{}: not a checkpoint's network: {source}", path.display())]
    BadNetwork {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Fs(#[from] FsError),
}

impl From<CheckpointError> for crate::env::EnvError {
    fn from(error: CheckpointError) -> Self {
        crate::env::EnvError::behind(error)
    }
}

/// Where a checkpoint keeps the network it makes again.
const NETWORK: &str = "network.json";

/// Where a checkpoint keeps the files written outside the fixture.
const FILES: &str = "files.tar";

/// What a checkpoint keeps of a sandbox.
pub struct Capture<'a> {
    /// The overlay's upper layer, as the host reaches it.
    pub upper: &'a Path,
    /// Writes the archive of the files outside the fixture to a path.
    pub files: &'a dyn Fn(&Path) -> Result<(), CheckpointError>,
    pub ids: IdRange,
    pub network: Option<&'a Network>,
}

/// Copies the upper layer (whiteouts and overlay attributes included) to
/// `dir/upper`, the archive of the files outside the fixture and the
/// network to make again beside it, unless another run kept it first.
pub fn keep(capture: &Capture, dir: &Path) -> Result<(), CheckpointError> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().ok_or(CheckpointError::NoParent)?;
    std::fs::create_dir_all(parent).map_err(FsError::at("create", parent))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // One of its own for each capture, named as the layers' store reads it.
    let partial = tempfile::Builder::new()
        .prefix(&store::partial_prefix(&name))
        .suffix(store::PARTIAL)
        .tempdir_in(parent)
        .map_err(FsError::at("create a folder in", parent))?
        .keep();
    let result = copy(capture.upper, &partial.join("upper"))
        .and_then(|()| unshift(&partial.join("upper"), capture.ids))
        .and_then(|()| (capture.files)(&partial.join(FILES)))
        .and_then(|()| match capture.network {
            Some(net) => {
                let json =
                    serde_json::to_string_pretty(net).map_err(CheckpointError::NetworkJson)?;
                std::fs::write(partial.join(NETWORK), json).map_err(CheckpointError::KeepNetwork)
            }
            None => Ok(()),
        });
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(e);
    }
    if std::fs::rename(&partial, dir).is_err() {
        // Another run renamed the same layer into place first: keep theirs.
        let _ = std::fs::remove_dir_all(&partial);
        if !dir.is_dir() {
            return Err(CheckpointError::Move(dir.to_path_buf()));
        }
    }
    Ok(())
}

/// The archive of the files a checkpoint at `dir` kept outside the fixture.
pub fn files(dir: &Path) -> Option<PathBuf> {
    Some(dir.join(FILES)).filter(|p| p.is_file())
}

/// The network a checkpoint at `dir` makes again, if it keeps one.
pub fn network(dir: &Path) -> Result<Option<Network>, CheckpointError> {
    let path = dir.join(NETWORK);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| CheckpointError::BadNetwork { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(FsError::at("read", &path)(e).into()),
    }
}

/// `cp -a` with extended attributes: overlayfs marks opaque folders with
/// them, and whiteouts are character devices, which `cp -a` recreates. It
/// stays on the source's file system.
fn copy(source: &Path, target: &Path) -> Result<(), CheckpointError> {
    let out = Command::new("cp")
        .args([
            "-a",
            "--preserve=all",
            "--one-file-system",
            "--no-target-directory",
        ])
        .arg(source)
        .arg(target)
        .output()
        .map_err(CheckpointError::Cp)?;
    if !out.status.success() {
        return Err(CheckpointError::Copy(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(())
}

const CAPABILITY: &str = "security.capability";

/// Owners in the sandbox's slot become the ids inside (`0..`). `chown`
/// clears set-user-ID and set-group-ID bits and file capabilities: they are
/// put back, capabilities with their root shifted too (as bases keep them).
fn unshift(tree: &Path, ids: IdRange) -> Result<(), CheckpointError> {
    let inside = |id: u32| {
        (ids.base..ids.base + ids.count)
            .contains(&id)
            .then(|| id - ids.base)
    };
    for entry in walkdir::WalkDir::new(tree) {
        let entry = entry?;
        let path = entry.path();
        let meta = path
            .symlink_metadata()
            .map_err(|source| CheckpointError::Metadata {
                path: path.to_path_buf(),
                source,
            })?;
        let (uid, gid) = (inside(meta.uid()), inside(meta.gid()));
        if uid.is_none() && gid.is_none() {
            continue;
        }
        let caps = meta
            .is_file()
            .then(|| get_xattr(path, CAPABILITY))
            .flatten();
        std::os::unix::fs::lchown(path, uid, gid).map_err(FsError::at("shift", path))?;
        if meta.is_file() && meta.mode() & 0o6000 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
                .map_err(FsError::at("keep the mode of", path))?;
        }
        if let Some(caps) = caps {
            set_xattr(path, CAPABILITY, &unshift_caps(caps, inside))
                .map_err(FsError::at("keep the capabilities of", path))?;
        }
    }
    Ok(())
}

/// A `security.capability` value with its root id moved inside: version 3
/// (with a root id, as a user namespace's root writes it) becomes version 2
/// when that root is the sandbox's own, as in bases.
fn unshift_caps(mut caps: Vec<u8>, inside: impl Fn(u32) -> Option<u32>) -> Vec<u8> {
    const V3: u8 = 3;
    if caps.len() == 24 && caps[3] == V3 {
        let rootid = u32::from_le_bytes([caps[20], caps[21], caps[22], caps[23]]);
        match inside(rootid) {
            Some(0) => {
                caps.truncate(20);
                caps[3] = 2;
            }
            Some(id) => caps[20..24].copy_from_slice(&id.to_le_bytes()),
            None => {}
        }
    }
    caps
}

fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(path, name, &mut buf[..]).ok()?;
    buf.truncate(n);
    Some(buf)
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) -> std::io::Result<()> {
    Ok(rustix::fs::lsetxattr(
        path,
        name,
        value,
        rustix::fs::XattrFlags::empty(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_written_by_a_sandboxs_root_are_kept_as_bases_keep_them() {
        let ids = IdRange {
            base: 0x6000_0000,
            count: 0x4_0000,
        };
        let inside = |id: u32| {
            (ids.base..ids.base + ids.count)
                .contains(&id)
                .then(|| id - ids.base)
        };
        // cap_net_raw=ep, version 3, root id the sandbox's root.
        let mut v3 = vec![0, 0, 0, 3, 0, 0x20, 0, 0];
        v3.extend([0; 12]);
        v3.extend(ids.base.to_le_bytes());
        let v2 = unshift_caps(v3.clone(), inside);
        assert_eq!(v2.len(), 20);
        assert_eq!(v2[3], 2);
        assert_eq!(v2[..3], v3[..3]);
        assert_eq!(v2[4..20], v3[4..20]);
        // A nested user namespace's root keeps version 3, shifted.
        let mut nested = v3.clone();
        nested[20..24].copy_from_slice(&(ids.base + 1000).to_le_bytes());
        assert_eq!(unshift_caps(nested, inside)[20..24], 1000u32.to_le_bytes());
        // Version 2, or a root outside the slot, is left as it is.
        assert_eq!(unshift_caps(v2.clone(), inside), v2);
        let mut outside = v3.clone();
        outside[20..24].copy_from_slice(&7u32.to_le_bytes());
        assert_eq!(unshift_caps(outside.clone(), inside), outside);
    }

    #[test]
    fn two_jobs_of_one_run_keep_the_same_layer_at_once() {
        let work = tempfile::tempdir().unwrap();
        let source = work.path().join("upper");
        std::fs::create_dir_all(source.join("etc")).unwrap();
        std::fs::write(source.join("etc/hostname"), "web1\n").unwrap();
        let dir = work.path().join("layers/debian-sysv-0123");
        let ids = IdRange {
            base: 1 << 30,
            count: 1 << 18,
        };
        let archived = |archive: &Path| -> Result<(), CheckpointError> {
            Ok(std::fs::write(archive, "tar").map_err(FsError::at("write", archive))?)
        };
        let network = Network {
            links: vec!["br0".into()],
            ip: vec!["link add name br0 type bridge".into()],
            ..Network::default()
        };
        std::thread::scope(|scope| {
            let jobs: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let capture = Capture {
                            upper: &source,
                            files: &archived,
                            ids,
                            network: Some(&network),
                        };
                        keep(&capture, &dir)
                    })
                })
                .collect();
            for job in jobs {
                job.join().unwrap().unwrap();
            }
        });
        assert_eq!(network_of(&dir), Some(network));
        let left: Vec<_> = std::fs::read_dir(work.path().join("layers"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }

    fn network_of(dir: &Path) -> Option<Network> {
        network(dir).unwrap()
    }

    #[test]
    fn a_kept_layer_is_renamed_into_place_and_a_second_keep_changes_nothing() {
        let work = tempfile::tempdir().unwrap();
        let source = work.path().join("upper");
        std::fs::create_dir_all(source.join("etc")).unwrap();
        std::fs::write(source.join("etc/hostname"), "web1\n").unwrap();
        let dir = work.path().join("layers/debian-sysv-0123");
        let ids = IdRange {
            base: 1 << 30,
            count: 1 << 18,
        };
        let archived = |archive: &Path| -> Result<(), CheckpointError> {
            Ok(std::fs::write(archive, "tar").map_err(FsError::at("write", archive))?)
        };
        let capture = Capture {
            upper: &source,
            files: &archived,
            ids,
            network: None,
        };
        keep(&capture, &dir).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("upper/etc/hostname")).unwrap(),
            "web1\n"
        );
        assert_eq!(files(&dir), Some(dir.join("files.tar")));
        assert_eq!(network(&dir).unwrap(), None);
        std::fs::write(source.join("etc/hostname"), "changed\n").unwrap();
        keep(&capture, &dir).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("upper/etc/hostname")).unwrap(),
            "web1\n"
        );
        let left: Vec<_> = std::fs::read_dir(work.path().join("layers"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }
}
