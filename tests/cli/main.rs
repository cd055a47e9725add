//! Integration tests: each copies a small test book from `tests/books/` into
//! a temporary project and runs the real `recipes` binary on it.

mod book;
mod check;
mod doctor;
mod list;
mod machine;
mod run;
mod sandbox;
mod scale;
mod session;
mod site;
mod stock;
mod usage;
mod workflow;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tempfile::TempDir;

/// A copy of `tests/books/<name>` in a temporary directory.
pub struct Project {
    dir: TempDir,
}

impl Project {
    pub fn new(name: &str) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("recipes-test-")
            .tempdir()
            .unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/books")
            .join(name);
        copy(&src, dir.path(), dir.path());
        Project { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `recipes` run from the project's root, with a shared build cache.
    pub fn recipes(&self) -> Command {
        let mut cmd = Command::cargo_bin("recipes").unwrap();
        cmd.current_dir(self.path())
            .env("RECIPES_CACHE", cache_dir())
            .env_remove("NO_COLOR")
            .env_remove("CI");
        cmd
    }
}

pub fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("recipes-cache")
}

/// Copies a tree as it is.
pub fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap().flatten() {
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

/// Copies a tree with its files' modes, replacing `@TMP@` with the
/// project's path in pages and giving pages named `crlf.md` Windows line
/// endings.
fn copy(src: &Path, dst: &Path, root: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy(&entry.path(), &to, root);
            continue;
        }
        let mut text = std::fs::read_to_string(entry.path()).unwrap();
        text = text
            .replace("@TMP@", &root.display().to_string())
            .replace("@CACHE@", &cache_dir().display().to_string());
        if entry.file_name() == "crlf.md" {
            text = text.replace('\n', "\r\n");
        }
        std::fs::write(&to, text).unwrap();
        // Scripts stay executable (`recipes/lib`'s helpers).
        let mode = std::fs::metadata(entry.path()).unwrap().permissions();
        std::fs::set_permissions(&to, mode).unwrap();
    }
}

/// Tests that need root are `#[ignore]`d with the reason, so that without
/// root they show as ignored, never as passed; CI runs them as root with
/// `cargo test -- --include-ignored`. This fails such a test when it is
/// run without root anyway, instead of letting it pass by doing nothing.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root; it is ignored unless --include-ignored is given"
    );
    machine::ensure_packages();
}

pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Running processes (zombies aside) whose command line contains `needle`.
pub fn processes(needle: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| {
                    s.rsplit_once(") ")
                        .map(|(_, r)| r.starts_with('Z'))
                        .unwrap_or(false)
                })
                .unwrap_or(true);
            cmdline.contains(needle) && !zombie
        })
        .collect()
}

/// Processes still in the control groups of sandboxes whose runner has
/// ended (`recipes.sandboxes/PID-N`, PID gone): what a run left behind,
/// told apart from the processes of runs still going on beside it.
pub fn left_by_ended_runs() -> Vec<(i32, String)> {
    let mut left = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cgroup = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
        let runner = cgroup.lines().find_map(|line| {
            let (_, rest) = line.split_once("/recipes.sandboxes/")?;
            rest.split('-').next()?.parse::<u32>().ok()
        });
        let Some(runner) = runner else { continue };
        if Path::new(&format!("/proc/{runner}")).exists() {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if !cmdline.is_empty() {
            left.push((pid, cmdline));
        }
    }
    left
}

/// Fails if a run that ended left a process behind (after a moment: the
/// kernel may need one to finish killing a namespace).
pub fn assert_runs_left_nothing() {
    let start = std::time::Instant::now();
    loop {
        let left = left_by_ended_runs();
        if left.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "left by ended runs: {left:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Fails if a process whose command line contains `needle` is still running
/// shortly after (the kernel may need a moment to finish killing; another
/// test running the same recipe at the same time needs a few seconds).
pub fn assert_gone(needle: &str) {
    let start = std::time::Instant::now();
    while !processes(needle).is_empty() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "still running: {:?}",
            processes(needle)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
