//! Where steps run. An [`Environment`] turns a step's program into a
//! `Command` placed in the recipe's world: a plain child process beside a
//! temporary fixture (unprivileged, `empty` fixture only) or a process
//! entered into the recipe's sandbox.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use crate::fsutil::FsError;
use crate::host::InstallError;
use crate::model::Where;

/// An error of a room behind the [`Environment`] trait, kept whole.
pub type Behind = Arc<dyn std::error::Error + Send + Sync>;

/// Why an environment could not be made, run a step, keep a checkpoint or
/// be released. Its words are those a recipe's `error` shows.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("`where=chroot` needs the sandbox, which needs root")]
    ChrootNeedsSandbox,
    /// A booted host (`host=`), without root.
    #[error("booting the host `{0}` needs root (the sandbox uses namespaces and mounts): run recipes as root")]
    HostNeedsRoot(String),
    /// A fixture other than `empty`, without root.
    #[error("running a recipe on the fixture `{0}` needs root (the sandbox uses namespaces and mounts): run recipes as root")]
    FixtureNeedsRoot(String),
    #[error("this environment keeps no checkpoints")]
    NoCheckpoints,
    /// One of the temporary folders of [`Direct`].
    #[error("cannot {doing} a temporary directory: {source}")]
    TempDir {
        doing: &'static str,
        source: std::io::Error,
    },
    /// Host commands the recipes call.
    #[error(transparent)]
    Install(#[from] InstallError),
    /// A base the prepare stage could not build (a `fixture::FixtureError`):
    /// the same words, shared by every run on it.
    #[error(transparent)]
    Unbuilt(Behind),
    /// What a room behind the trait says, typed there: a sandbox that
    /// cannot start or stop, a checkpoint that cannot be kept or brought
    /// back, a booted host that does not come up, a fixture whose base
    /// cannot be had. Each room converts its own error (`From`), so this one
    /// names none of them and no room loops back to it.
    #[error(transparent)]
    Behind(Behind),
    #[error(transparent)]
    Fs(#[from] FsError),
}

impl EnvError {
    /// `error`, said by a room behind the trait.
    pub fn behind(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        EnvError::Behind(Arc::new(error))
    }
}

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
    fn command(&self, step: &StepProgram) -> Result<Command, EnvError>;
    /// What may explain a failure beyond the step's own output (a limit
    /// the environment ran into).
    fn diagnose(&self) -> Vec<String> {
        Vec::new()
    }
    /// Keeps the state of the fixture as a checkpoint layer at `dir`, with
    /// a note on what it keeps beyond files; fails with the reason when the
    /// environment holds live state a checkpoint cannot (processes, mounts,
    /// network state it cannot make again).
    fn capture(&self, _dir: &std::path::Path) -> Result<Option<String>, EnvError> {
        Err(EnvError::NoCheckpoints)
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
    fn close(self: Box<Self>) -> Result<Option<PathBuf>, EnvError>;
}

/// Steps as ordinary child processes, with a temporary directory as the
/// fixture and another as the working directory.
pub struct Direct {
    rootfs: tempfile::TempDir,
    scratch: tempfile::TempDir,
    keep: bool,
}

impl Direct {
    pub fn new(keep: bool) -> Result<Self, EnvError> {
        let make = |kind: &str| {
            tempfile::Builder::new()
                .prefix(&temp_prefix(kind))
                .tempdir()
                .map_err(|source| EnvError::TempDir {
                    doing: "create",
                    source,
                })
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
    for left in crate::process::left_by_dead_runs(dir, pid_of) {
        let _ = std::fs::remove_dir_all(left);
    }
}

impl Environment for Direct {
    fn rootfs(&self) -> String {
        self.rootfs.path().display().to_string()
    }

    fn command(&self, step: &StepProgram) -> Result<Command, EnvError> {
        if step.where_ == Where::Chroot {
            return Err(EnvError::ChrootNeedsSandbox);
        }
        let mut command = Command::new(&step.program);
        command.args(&step.args).current_dir(self.scratch.path());
        Ok(command)
    }

    fn close(self: Box<Self>) -> Result<Option<PathBuf>, EnvError> {
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
            .map_err(|source| EnvError::TempDir {
                doing: "remove",
                source,
            })?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_processes_run_no_chroot_step_and_keep_no_checkpoint() {
        let env = Direct::new(false).unwrap();
        let step = StepProgram {
            program: "true".into(),
            args: Vec::new(),
            where_: Where::Chroot,
        };
        let refused = env.command(&step).unwrap_err();
        assert!(matches!(refused, EnvError::ChrootNeedsSandbox));
        assert_eq!(
            refused.to_string(),
            "`where=chroot` needs the sandbox, which needs root"
        );
        let kept = env
            .capture(std::path::Path::new("/nonexistent"))
            .unwrap_err();
        assert_eq!(kept.to_string(), "this environment keeps no checkpoints");
        assert_eq!(Box::new(env).close().unwrap(), None);
    }
}
