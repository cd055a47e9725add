//! The cgroup v2 folder each sandbox lives in: its processes (and the LXC
//! containers it starts, which make their cgroups below it) can all be
//! killed at once, and the folders removed, when the sandbox ends; folders
//! left by a runner that was killed are removed by the next run.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const PARENT: &str = "recipes.sandboxes";

/// The host's cgroup v2 mount point, if any.
pub fn cgroup2_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split(' ').next() == Some("cgroup2") {
            left.split(' ').nth(4).map(PathBuf::from)
        } else {
            None
        }
    })
}

/// Creates a fresh folder for one sandbox of this runner.
pub fn create() -> Option<PathBuf> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let parent = cgroup2_mount()?.join(PARENT);
    let dir = parent.join(format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir)
}

/// Kills everything in `dir` and removes it with its sub-folders.
pub fn remove(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
    let mut last = Ok(());
    for _ in 0..100 {
        last = remove_tree(dir);
        if last.is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    last
}

fn remove_tree(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_tree(&entry.path())?;
        }
    }
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Removes the folders of runners that are no longer alive.
pub fn remove_stale() {
    let Some(parent) = cgroup2_mount().map(|m| m.join(PARENT)) else {
        return;
    };
    for entry in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = remove(&entry.path());
        }
    }
}

/// Removes the shared parent folder once no runner uses it.
pub fn remove_parent_if_unused() {
    if let Some(parent) = cgroup2_mount().map(|m| m.join(PARENT)) {
        // Fails, harmlessly, while another runner has sandboxes in it.
        let _ = std::fs::remove_dir(parent);
    }
}
