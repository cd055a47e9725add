//! A step's kind → the program that runs it: a shell for scripts and
//! transcripts, the compiled binary for rust, `sh`/`cat` to write or read
//! a file; and the environment every step starts with.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::{rust, session, transcript};
use crate::env::{Environment, StepProgram};
use crate::model::{Recipe, Step, StepKind, STEP_PATH};
use crate::process::Supervisor;

/// What runs for a step, what it reads on stdin, and how reports name it.
pub struct Prepared {
    pub program: StepProgram,
    pub stdin: Option<Vec<u8>>,
    /// The command or file the step is about, as a failure shows it.
    pub command: String,
}

/// A step that could not be made into a program (a rust step that does not
/// compile), with the name reports give it.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct PrepareError {
    pub command: String,
    pub kind: PrepareErrorKind,
}

/// What kept a step from becoming a program.
#[derive(Debug, thiserror::Error)]
pub enum PrepareErrorKind {
    #[error(transparent)]
    Compile(#[from] rust::CompileError),
    /// A session's driver is this binary, run again.
    #[error("cannot find the recipes binary: {0}")]
    NoBinary(std::io::Error),
    /// A session's request, as JSON.
    #[error("{0}")]
    Request(serde_json::Error),
}

/// The program for `step`; `None` for an `expect` block, which does not
/// run. `rootfs` is `$ROOTFS` as the step sees it; `env` says where a
/// compiled program appears to it; `timeout` bounds each wait of a session.
pub fn prepare(
    step: &Step,
    env: &dyn Environment,
    rootfs: &str,
    cache: &Path,
    supervisor: &Supervisor,
    timeout: Duration,
) -> Result<Option<Prepared>, PrepareError> {
    let expand = |path: &str| match path.strip_prefix("$ROOTFS") {
        Some(rest) => format!("{}{rest}", rootfs.trim_end_matches('/')),
        None => path.to_string(),
    };
    let os = |s: &str| OsString::from(s);
    let prepared = |name: &str, args: Vec<OsString>, stdin, command: String| {
        Some(Prepared {
            program: StepProgram {
                program: name.into(),
                args,
                where_: step.where_,
            },
            stdin,
            command,
        })
    };
    Ok(match step.kind {
        StepKind::Script => {
            let mut args = vec![os("-eu")];
            if step.syntax == "bash" {
                args.extend([os("-o"), os("pipefail")]);
            }
            args.extend([os("-c"), os(&step.body)]);
            prepared(&step.syntax, args, None, step.body.clone())
        }
        StepKind::Console if step.session.is_some() => {
            let session = step.session.as_ref().expect("checked");
            Some(session::prepare(step, session, env, timeout)?)
        }
        StepKind::Console => {
            let script = transcript::script(step);
            let args = vec![os("--noprofile"), os("--norc"), os("-c"), os(&script)];
            prepared("bash", args, None, String::new())
        }
        StepKind::Rust => {
            let command = "rust program".to_string();
            let binary =
                rust::compile(cache, &step.body, supervisor).map_err(|e| PrepareError {
                    command: command.clone(),
                    kind: e.into(),
                })?;
            prepared(
                &env.inside(&binary).display().to_string(),
                vec![],
                None,
                command,
            )
        }
        StepKind::File => {
            let path = expand(step.file.as_deref().unwrap_or_default());
            let mut script = String::from("mkdir -p -- \"$(dirname -- \"$1\")\" && cat > \"$1\"");
            if let Some(mode) = step.mode {
                script.push_str(&format!(" && chmod {mode:o} -- \"$1\""));
            }
            let args = vec![os("-c"), os(&script), os("sh"), os(&path)];
            let stdin = Some(step.body.clone().into_bytes());
            prepared("sh", args, stdin, format!("write {path}"))
        }
        StepKind::Check => {
            let path = expand(step.file.as_deref().unwrap_or_default());
            prepared(
                "cat",
                vec![os("--"), os(&path)],
                None,
                format!("check {path}"),
            )
        }
        StepKind::Expect => None,
    })
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
