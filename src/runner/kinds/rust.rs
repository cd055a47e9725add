//! Rust steps: a complete program, compiled once per content hash with the
//! host's `rustc` into the cache and reused by every later run; judged as
//! a script is.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::script;
use crate::env::Environment;
use crate::fsutil::FsError;
use crate::model::{ExpectedExit, Step};
use crate::process::{Exit, Supervisor};
use crate::runner::step::Prepared;
use crate::runner::verdict::{Ran, Verdict};

/// How reports name a rust step.
pub const COMMAND: &str = "rust program";

/// The compiled program, as the environment sees it.
pub fn prepare(
    step: &Step,
    env: &dyn Environment,
    cache: &Path,
    supervisor: &Supervisor,
) -> Result<Prepared, CompileError> {
    let binary = compile(cache, &step.body, supervisor)?;
    let program = env.inside(&binary).display().to_string();
    Ok(Prepared::new(step, program, vec![], None, COMMAND.into()))
}

/// As a script: its exit code, then the `expect` block after it.
pub fn judge(ran: &Ran, exit: ExpectedExit, bless: bool) -> Verdict {
    script::judge(ran, exit, bless)
}

/// Why a rust step has no program to run.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("cannot run rustc (is a Rust toolchain installed?): {0}")]
    Rustc(std::io::Error),
    /// The compiler's output, its paths those of the recipe's program.
    #[error("the program does not compile ({exit}):\n{output}")]
    DoesNotCompile { exit: Exit, output: String },
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// Edition the programs are compiled with.
const EDITION: &str = "2021";
/// How long compiling one program may take.
const RUSTC_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Compiles `source` unless a binary for it is cached; returns its path, or
/// the compiler's output when it does not compile.
pub fn compile(
    cache: &Path,
    source: &str,
    supervisor: &Supervisor,
) -> Result<PathBuf, CompileError> {
    let mut hasher = Sha256::new();
    hasher.update(EDITION.as_bytes());
    hasher.update([0]);
    hasher.update(source.as_bytes());
    let hash: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = cache.join("rust");
    let binary = dir.join(&hash[..32]);
    if binary.is_file() {
        return Ok(binary);
    }
    std::fs::create_dir_all(&dir).map_err(FsError::at("create", &dir))?;
    crate::env::remove_stale_temp(&dir, ".build");
    let work = tempfile::Builder::new()
        .prefix(&crate::env::temp_prefix(".build"))
        .tempdir_in(&dir)
        .map_err(FsError::at("create a build folder in", &dir))?;
    let src = work.path().join("main.rs");
    std::fs::write(&src, source).map_err(FsError::at("write", &src))?;
    let out = work.path().join("main");
    let mut rustc = Command::new("rustc");
    rustc
        .args([
            "--edition",
            EDITION,
            "--crate-name",
            "recipe_step",
            "-C",
            "debuginfo=0",
            "-o",
        ])
        .arg(&out)
        .arg(&src);
    let result = supervisor
        .run(rustc, None, RUSTC_TIMEOUT)
        .map_err(CompileError::Rustc)?;
    if result.exit != Exit::Code(0) {
        let output = String::from_utf8_lossy(&result.output);
        return Err(CompileError::DoesNotCompile {
            exit: result.exit,
            output: output.replace(&src.display().to_string(), "main.rs"),
        });
    }
    // Rename into place so a concurrent or interrupted build is never half-used.
    std::fs::rename(&out, &binary).map_err(FsError::at("move the binary to", &binary))?;
    Ok(binary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::Captures;
    use crate::model::Action;
    use crate::runner::kinds::cases::{line, ran, step};

    /// A row: its name, the expected exit, how the program ended, what it
    /// printed, the `expect` block after it, and the verdict.
    type Row = (
        &'static str,
        ExpectedExit,
        Exit,
        &'static str,
        Option<&'static str>,
        &'static str,
    );

    #[test]
    fn judge_as_a_script() {
        let rows: &[Row] = &[
            (
                "ends with 0",
                ExpectedExit::Code(0),
                Exit::Code(0),
                "",
                None,
                "passed",
            ),
            (
                "panics",
                ExpectedExit::Code(0),
                Exit::Code(101),
                "",
                None,
                "Failed at 1 `rust program`: ended with exit code 101, expected exit code 0",
            ),
            (
                "ends with its exit=",
                ExpectedExit::Code(101),
                Exit::Code(101),
                "",
                None,
                "passed",
            ),
            (
                "prints its expect block",
                ExpectedExit::Code(0),
                Exit::Code(0),
                "4\n",
                Some("[INT:n]\n"),
                "passed n=4",
            ),
            (
                "prints something else",
                ExpectedExit::Code(0),
                Exit::Code(0),
                "4\n",
                Some("5\n"),
                "Failed at 9 `rust program`: output differs from the expected output",
            ),
        ];
        for &(row, exit, ended, output, expect, want) in rows {
            let program = step(1, Action::Rust { exit }, "fn main() {}\n");
            let expect = expect.map(|body| step(9, Action::Expect, body));
            let bound = Captures::new();
            let ran = Ran {
                expect: expect.as_ref(),
                command: COMMAND,
                ..ran(&program, ended, output, &bound)
            };
            assert_eq!(line(&judge(&ran, exit, false)), want, "row `{row}`");
        }
    }
}
