//! Where steps run. An [`Environment`] turns a step's program into a
//! `Command` placed in the recipe's world: a plain child process beside a
//! temporary fixture (unprivileged, `empty` fixture only) or a process
//! entered into the recipe's sandbox.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use crate::model::Where;

/// A program to run for a step.
#[derive(Debug, Clone)]
pub struct StepProgram {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub where_: Where,
}

/// The world one recipe run happens in.
pub trait Environment: Send {
    /// `$ROOTFS` as steps see it.
    fn rootfs(&self) -> String;
    /// Where a host path shown to the steps (a compiled program, the shell
    /// helpers) appears to them.
    fn inside(&self, host: &std::path::Path) -> PathBuf {
        host.to_path_buf()
    }
    /// The steps' `HOME`, when not the runner's.
    fn home(&self) -> Option<PathBuf> {
        None
    }
    /// Variables this environment adds to every step's.
    fn vars(&self) -> Vec<(&'static str, &'static str)> {
        Vec::new()
    }
    /// A command that runs `step` in this environment (env vars not set).
    fn command(&self, step: &StepProgram) -> Result<Command, String>;
    /// What may explain a failure beyond the step's own output (a limit
    /// the environment ran into).
    fn diagnose(&self) -> Vec<String> {
        Vec::new()
    }
    /// Keeps the state of the fixture as a checkpoint layer at `dir`, with
    /// a note on what it keeps beyond files; fails with the reason when the
    /// environment holds live state a checkpoint cannot (processes, mounts,
    /// network state it cannot make again).
    fn capture(&self, _dir: &std::path::Path) -> Result<Option<String>, String> {
        Err("this environment keeps no checkpoints".into())
    }
    /// What was made again from a checkpoint beyond its files.
    fn restored(&self) -> Option<String> {
        None
    }
    /// How the booted host the steps run in came up (`host=`), if any.
    fn booted(&self) -> Option<String> {
        None
    }
    /// Releases the environment; returns where it was kept, with `--keep`.
    fn close(self: Box<Self>) -> Result<Option<PathBuf>, String>;
}

/// Steps as ordinary child processes, with a temporary directory as the
/// fixture and another as the working directory.
pub struct Direct {
    rootfs: tempfile::TempDir,
    scratch: tempfile::TempDir,
    keep: bool,
}

impl Direct {
    pub fn new(keep: bool) -> Result<Self, String> {
        let make = |kind: &str| {
            tempfile::Builder::new()
                .prefix(&temp_prefix(kind))
                .tempdir()
                .map_err(|e| format!("cannot create a temporary directory: {e}"))
        };
        Ok(Direct {
            rootfs: make("recipes-rootfs")?,
            scratch: make("recipes-scratch")?,
            keep,
        })
    }
}

/// `KIND-PID-`: temporary folders carry the pid of the run that made them,
/// so a later run can tell those of a run that was killed.
pub fn temp_prefix(kind: &str) -> String {
    format!("{kind}-{}-", std::process::id())
}

/// Removes the temporary folders `KIND-PID-*` in `dir` whose run is gone.
pub fn remove_stale_temp(dir: &std::path::Path, kind: &str) {
    let pid_of = |name: &str| {
        let rest = name.strip_prefix(kind)?.strip_prefix('-')?;
        rest.split('-').next()?.parse().ok()
    };
    for left in crate::host::left_by_dead_runs(dir, pid_of) {
        let _ = std::fs::remove_dir_all(left);
    }
}

impl Environment for Direct {
    fn rootfs(&self) -> String {
        self.rootfs.path().display().to_string()
    }

    fn command(&self, step: &StepProgram) -> Result<Command, String> {
        if step.where_ == Where::Chroot {
            return Err("`where=chroot` needs the sandbox, which needs root".into());
        }
        let mut command = Command::new(&step.program);
        command.args(&step.args).current_dir(self.scratch.path());
        Ok(command)
    }

    fn close(self: Box<Self>) -> Result<Option<PathBuf>, String> {
        if self.keep {
            let _ = self.scratch.keep();
            return Ok(Some(self.rootfs.keep()));
        }
        let Direct {
            rootfs, scratch, ..
        } = *self;
        rootfs
            .close()
            .and(scratch.close())
            .map_err(|e| format!("cannot remove a temporary directory: {e}"))?;
        Ok(None)
    }
}
