//! Filesystem helpers every module shares: one directory walk (walkdir,
//! never following symlinks) and one atomic write (written aside, renamed
//! into place). Errors carry the path and the operation.

use std::io::Write;
use std::path::{Path, PathBuf};

use walkdir::{DirEntry, WalkDir};

/// An I/O error with the path and the operation that failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot {operation} {}: {source}", path.display())]
pub struct FsError {
    pub operation: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl FsError {
    /// A `map_err` adapter: `.map_err(FsError::at("read", path))`.
    pub fn at<'a>(
        operation: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(std::io::Error) -> FsError + 'a {
        move |source| FsError {
            operation,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A walk of the tree under `root` (itself included), not following
/// symlinks. Callers add depth limits or `contents_first` as they need.
pub fn walk(root: &Path) -> WalkDir {
    WalkDir::new(root).follow_links(false)
}

/// Every entry of [`walk`] that can be read; unreadable ones are skipped.
pub fn entries(root: &Path) -> impl Iterator<Item = DirEntry> {
    walk(root).into_iter().filter_map(Result::ok)
}

/// Bytes used by a tree (files, folders and symlinks, not following them).
pub fn disk_usage(root: &Path) -> u64 {
    entries(root)
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Writes `bytes` into a temporary file beside `path` (with `path`'s mode
/// when it exists), ready to be renamed into place.
fn stage(path: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile, FsError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).map_err(FsError::at("write next to", path))?;
    tmp.write_all(bytes)
        .map_err(FsError::at("write", tmp.path()))?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = tmp.as_file().set_permissions(meta.permissions());
    }
    Ok(tmp)
}

/// Writes `path` aside in its folder and renames it into place, so a reader
/// (or a crash) never sees half a file. An existing file keeps its mode.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    stage(path, bytes)?
        .persist(path)
        .map_err(|e| FsError::at("replace", path)(e.error))?;
    Ok(())
}

/// Writes several files as one change: each is written aside first, and
/// only when all are written are they renamed into place, so a failure
/// (a full disk, a read-only folder) leaves every file as it was.
pub fn write_all_atomically(files: &[(PathBuf, Vec<u8>)]) -> Result<(), FsError> {
    let staged = files
        .iter()
        .map(|(path, bytes)| Ok((stage(path, bytes)?, path)))
        .collect::<Result<Vec<_>, FsError>>()?;
    for (tmp, path) in staged {
        tmp.persist(path)
            .map_err(|e| FsError::at("replace", path)(e.error))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_without_following_links_and_sums_sizes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/f"), "12345").unwrap();
        std::os::unix::fs::symlink("/", dir.path().join("a/root")).unwrap();
        let names: Vec<String> = entries(dir.path())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 4, "{names:?}");
        assert!(disk_usage(dir.path()) >= 5);
        assert_eq!(disk_usage(&dir.path().join("a/f")), 5);
    }

    #[test]
    fn atomic_writes_keep_the_mode_and_name_the_path() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        write_atomically(&path, b"one").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let missing = dir.path().join("no/such/x");
        let error = write_atomically(&missing, b"").unwrap_err().to_string();
        assert!(error.contains("no/such/x"), "{error}");
    }
}
