//! What every kind of step becomes before it runs: a program, what it reads
//! on stdin and how reports name it (each kind makes its own, in
//! `runner/kinds/`); and the environment every step starts with.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

use crate::env::{Environment, StepProgram};
use crate::model::{Recipe, Step, STEP_PATH};

/// What runs for a step, what it reads on stdin, and how reports name it.
pub struct Prepared {
    pub program: StepProgram,
    pub stdin: Option<Vec<u8>>,
    /// The command or file the step is about, as a failure shows it.
    pub command: String,
}

impl Prepared {
    /// `program` with `args`, run where `step` says.
    pub fn new(
        step: &Step,
        program: impl Into<OsString>,
        args: Vec<OsString>,
        stdin: Option<Vec<u8>>,
        command: String,
    ) -> Prepared {
        Prepared {
            program: StepProgram {
                program: program.into(),
                args,
                where_: step.where_,
            },
            stdin,
            command,
        }
    }
}

/// The environment of every step: a clean one, with `ROOTFS`, `RECIPE`
/// and `RECIPES_LIB` (DESIGN §4); nothing is inherited from the runner but
/// `HOME`.
pub fn set_env(
    command: &mut Command,
    env: &dyn Environment,
    rootfs: &str,
    recipe: &Recipe,
    lib_dir: &Path,
) {
    command
        .env_clear()
        .env("PATH", STEP_PATH)
        .env(
            "HOME",
            env.home()
                .map(Into::into)
                .or_else(|| std::env::var_os("HOME"))
                .unwrap_or_else(|| "/root".into()),
        )
        .env("LANG", "C.UTF-8")
        .env("LC_ALL", "C.UTF-8")
        .env("TERM", "dumb")
        .env("ROOTFS", rootfs)
        .env("RECIPE", &recipe.id)
        .env("RECIPES_LIB", env.inside(lib_dir))
        .envs(env.vars());
}
