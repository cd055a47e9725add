//! Rust steps: a complete program, compiled once per content hash with the
//! host's `rustc` into the cache and reused by every later run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::process::{Exit, Supervisor};

/// Edition the programs are compiled with.
const EDITION: &str = "2021";
/// How long compiling one program may take.
const RUSTC_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Compiles `source` unless a binary for it is cached; returns its path, or
/// the compiler's output when it does not compile.
pub fn compile(cache: &Path, source: &str, supervisor: &Supervisor) -> Result<PathBuf, String> {
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
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    super::env::remove_stale_temp(&dir, ".build");
    let work = tempfile::Builder::new()
        .prefix(&super::env::temp_prefix(".build"))
        .tempdir_in(&dir)
        .map_err(|e| format!("cannot create a build folder in {}: {e}", dir.display()))?;
    let src = work.path().join("main.rs");
    std::fs::write(&src, source).map_err(|e| format!("cannot write {}: {e}", src.display()))?;
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
        .map_err(|e| format!("cannot run rustc (is a Rust toolchain installed?): {e}"))?;
    if result.exit != Exit::Code(0) {
        let mut text = String::from_utf8_lossy(&result.output).into_owned();
        text = text.replace(&src.display().to_string(), "main.rs");
        return Err(format!(
            "the program does not compile ({}):\n{text}",
            result.exit
        ));
    }
    // Rename into place so a concurrent or interrupted build is never half-used.
    std::fs::rename(&out, &binary)
        .map_err(|e| format!("cannot move the binary to {}: {e}", binary.display()))?;
    Ok(binary)
}
