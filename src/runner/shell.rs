//! An interactive shell in a recipe's sandbox (`recipes shell`, `run
//! --shell-on-fail`): bash with the step's environment (`ROOTFS`, `RECIPE`,
//! captured values) and a prompt that names the recipe. On a terminal it
//! becomes the terminal's foreground process group, as a shell's job would,
//! and gives it back when it ends; otherwise it reads commands from stdin.

use std::io::IsTerminal;
use std::os::unix::process::CommandExt;
use std::process::Stdio;

use nix::sys::signal::{signal, SigHandler, Signal};
use nix::unistd::{getpgrp, tcsetpgrp, Pid};

use super::step;
use crate::env::{EnvError, Environment, StepProgram};
use crate::matcher::Captures;
use crate::model::{Recipe, Where};

/// Where a shell opens in the sandbox of the recipe a run is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellAt {
    /// After its last step.
    End,
    /// Just before its step whose opening fence is on this line.
    Before(usize),
    /// At the step that fails, in the state it left.
    Failure,
}

/// Why a shell could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error("cannot start the shell: {0}")]
    Start(std::io::Error),
    #[error("waiting for the shell: {0}")]
    Wait(std::io::Error),
}

/// Runs the shell to its end; `why` says where it stands.
pub fn open(
    env: &dyn Environment,
    recipe: &Recipe,
    captures: &Captures,
    lib_dir: &std::path::Path,
    why: &str,
) -> Result<(), ShellError> {
    let terminal = std::io::stdin().is_terminal();
    let mut args = vec!["--noprofile", "--norc"];
    if terminal {
        args.push("-i");
    }
    let program = StepProgram {
        program: "bash".into(),
        args: args.into_iter().map(Into::into).collect(),
        where_: Where::Host,
    };
    let mut command = env.command(&program)?;
    let rootfs = env.rootfs();
    step::set_env(&mut command, env, &rootfs, recipe, lib_dir);
    command
        .envs(captures)
        .env("PS1", format!("[recipes {}] \\w# ", recipe.id))
        .env(
            "TERM",
            std::env::var("TERM").unwrap_or_else(|_| "dumb".into()),
        )
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    eprintln!(
        "recipes: a shell in the sandbox of `{}`, {why}; `exit` leaves it and tears the sandbox down",
        recipe.id
    );
    if !terminal {
        let status = command.status().map_err(ShellError::Start)?;
        eprintln!("recipes: the shell ended ({status})");
        return Ok(());
    }
    command.process_group(0);
    let mut child = command.spawn().map_err(ShellError::Start)?;
    let stdin = std::io::stdin();
    let group = Pid::from_raw(child.id() as i32);
    // A background process that takes the terminal back gets SIGTTOU.
    // SAFETY: SIG_IGN installs no handler code.
    let _ = unsafe { signal(Signal::SIGTTOU, SigHandler::SigIgn) };
    let _ = tcsetpgrp(&stdin, group);
    let status = child.wait();
    let _ = tcsetpgrp(&stdin, getpgrp());
    // SAFETY: restoring the default action installs no handler code.
    let _ = unsafe { signal(Signal::SIGTTOU, SigHandler::SigDfl) };
    status.map_err(ShellError::Wait)?;
    Ok(())
}
