//! Checkpoint layers: the upper layer of a sandbox's overlay, copied into
//! the cache once a prerequisite chain has run, with the sandbox's ids
//! shifted back to `0..` (layers are shown idmapped, like bases, in any id
//! slot), built aside and renamed into place, so a concurrent run or an
//! interrupted copy never leaves a half-made layer in use.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use super::plan::IdRange;

/// Copies the upper layer `source` (whiteouts and overlay attributes
/// included) to `dir/upper`, unless another run kept it first.
pub fn keep(source: &Path, dir: &Path, ids: IdRange) -> Result<(), String> {
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
    let result = copy(source, &partial.join("upper")).and_then(|()| unshift(&partial, ids));
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

/// `cp -a` with extended attributes: overlayfs marks opaque folders with
/// them, and whiteouts are character devices, which `cp -a` recreates.
fn copy(source: &Path, target: &Path) -> Result<(), String> {
    let out = Command::new("cp")
        .args(["-a", "--preserve=all", "--no-target-directory"])
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
        keep(&source, &dir, ids).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("upper/etc/hostname")).unwrap(),
            "web1\n"
        );
        std::fs::write(source.join("etc/hostname"), "changed\n").unwrap();
        keep(&source, &dir, ids).unwrap();
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
