//! Checkpoint layers: the upper layer of a sandbox's overlay, copied into
//! the cache once a prerequisite chain has run, with the sandbox's ids
//! shifted back to `0..` (layers are shown idmapped, like bases, in any id
//! slot), built aside and renamed into place, so a concurrent run or an
//! interrupted copy never leaves a half-made layer in use. Beside the layer:
//! the files the chain wrote outside the fixture ([`plan::KEPT`], copied back
//! into the next sandbox before its first step) and its network.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use super::network::Network;
use super::plan::{self, IdRange};

/// Where a checkpoint keeps the network it makes again.
const NETWORK: &str = "network.json";

/// Where a checkpoint keeps the files written outside the fixture.
const FILES: &str = "files";

/// What a checkpoint keeps of a sandbox.
pub struct Capture<'a> {
    /// The sandbox's root, as the host sees it (`/proc/PID/root`).
    pub root: &'a Path,
    /// The overlay's upper layer, as the host sees it.
    pub upper: &'a Path,
    pub ids: IdRange,
    pub network: Option<&'a Network>,
}

/// Copies the upper layer (whiteouts and overlay attributes included) to
/// `dir/upper`, the files of [`plan::KEPT`] to `dir/files` and the network
/// to make again beside them, unless another run kept it first.
pub fn keep(capture: &Capture, dir: &Path) -> Result<(), String> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().ok_or("a checkpoint needs a parent folder")?;
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let partial = parent.join(format!(".{name}.{}.partial", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial)
        .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    let result = copy(capture.upper, &partial.join("upper"))
        .and_then(|()| keep_files(capture.root, &partial.join(FILES)))
        .and_then(|()| unshift(&partial, capture.ids))
        .and_then(|()| match capture.network {
            Some(net) => {
                let json = serde_json::to_string_pretty(net).map_err(|e| e.to_string())?;
                std::fs::write(partial.join(NETWORK), json)
                    .map_err(|e| format!("cannot keep the network: {e}"))
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
            return Err(format!("cannot move the checkpoint to {}", dir.display()));
        }
    }
    Ok(())
}

/// Copies the folders of [`plan::KEPT`] that hold anything, staying on
/// their own file system (the fixture mounted at `at=` is in the layer).
fn keep_files(root: &Path, files: &Path) -> Result<(), String> {
    for kept in plan::KEPT {
        let rel = kept.trim_start_matches('/');
        let source = root.join(rel);
        let used = std::fs::read_dir(&source)
            .map(|mut entries| entries.next().is_some())
            .unwrap_or(false);
        if !used {
            continue;
        }
        let target = files.join(rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        copy(&source, &target)?;
        // `cp` leaves mount points as empty folders: they are not the
        // chain's files (the next sandbox mounts its own there).
        let top = source.metadata().map_err(|e| e.to_string())?.dev();
        for entry in walkdir::WalkDir::new(&source)
            .min_depth(1)
            .same_file_system(true)
        {
            let entry = entry.map_err(|e| e.to_string())?;
            let meta = entry.metadata().map_err(|e| e.to_string())?;
            if meta.is_dir() && meta.dev() != top {
                let copied =
                    target.join(entry.path().strip_prefix(&source).unwrap_or(Path::new("")));
                let _ = std::fs::remove_dir(copied);
            }
        }
    }
    Ok(())
}

/// Copies the files a checkpoint at `dir` kept outside the fixture into the
/// sandbox whose root the host sees at `root`, owned by the sandbox's ids.
/// Called before the sandbox's first step, when nothing in it can race.
pub fn restore_files(dir: &Path, root: &Path, ids: IdRange) -> Result<(), String> {
    let files = dir.join(FILES);
    if !files.is_dir() {
        return Ok(());
    }
    for kept in plan::KEPT {
        let rel = kept.trim_start_matches('/');
        let source = files.join(rel);
        if !source.is_dir() {
            continue;
        }
        let target = root.join(rel);
        copy(&source, &target)?;
        for entry in walkdir::WalkDir::new(&source) {
            let entry = entry.map_err(|e| e.to_string())?;
            let meta = entry.path().symlink_metadata().map_err(|e| e.to_string())?;
            let inside = target.join(entry.path().strip_prefix(&source).unwrap_or(Path::new("")));
            let shift = |id: u32| (id < ids.count).then(|| ids.base + id);
            std::os::unix::fs::lchown(&inside, shift(meta.uid()), shift(meta.gid()))
                .map_err(|e| format!("cannot shift {}: {e}", inside.display()))?;
        }
    }
    Ok(())
}

/// The network a checkpoint at `dir` makes again, if it keeps one.
pub fn network(dir: &Path) -> Result<Option<Network>, String> {
    let path = dir.join(NETWORK);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: not a checkpoint's network: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// `cp -a` with extended attributes: overlayfs marks opaque folders with
/// them, and whiteouts are character devices, which `cp -a` recreates. It
/// stays on the source's file system, and merges into an existing target.
fn copy(source: &Path, target: &Path) -> Result<(), String> {
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
        .map_err(|e| format!("cannot run cp: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cannot copy the fixture's changes: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// Owners in the sandbox's slot become the ids inside (`0..`).
fn unshift(tree: &Path, ids: IdRange) -> Result<(), String> {
    let inside = |id: u32| {
        (ids.base..ids.base + ids.count)
            .contains(&id)
            .then(|| id - ids.base)
    };
    for entry in walkdir::WalkDir::new(tree).min_depth(1) {
        let entry = entry.map_err(|e| e.to_string())?;
        let meta = entry.path().symlink_metadata().map_err(|e| e.to_string())?;
        let (uid, gid) = (inside(meta.uid()), inside(meta.gid()));
        if uid.is_some() || gid.is_some() {
            std::os::unix::fs::lchown(entry.path(), uid, gid)
                .map_err(|e| format!("cannot shift {}: {e}", entry.path().display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let root = work.path().join("root");
        let capture = Capture {
            root: &root,
            upper: &source,
            ids,
            network: None,
        };
        keep(&capture, &dir).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("upper/etc/hostname")).unwrap(),
            "web1\n"
        );
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
