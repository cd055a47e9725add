//! Blocks with `file=PATH`: the body written to the file (then given its
//! `mode=`), or with `check` the file read back and compared with the body.
//! `$ROOTFS` at the start of the path is where the step sees the fixture.

use std::ffi::OsString;

use crate::matcher::Captures;
use crate::model::Step;
use crate::process::Exit;
use crate::runner::step::Prepared;
use crate::runner::verdict::{expected_output, passed, Ran, StepError, Verdict};

/// `path` with a leading `$ROOTFS` replaced by `rootfs`.
fn expand(path: &str, rootfs: &str) -> String {
    match path.strip_prefix("$ROOTFS") {
        Some(rest) => format!("{}{rest}", rootfs.trim_end_matches('/')),
        None => path.to_string(),
    }
}

/// `sh` that makes the file's folder, writes stdin (the body) to it and
/// sets its mode.
pub fn prepare_write(step: &Step, path: &str, mode: Option<u32>, rootfs: &str) -> Prepared {
    let path = expand(path, rootfs);
    let mut script = String::from("mkdir -p -- \"$(dirname -- \"$1\")\" && cat > \"$1\"");
    if let Some(mode) = mode {
        script.push_str(&format!(" && chmod {mode:o} -- \"$1\""));
    }
    let args = ["-c", script.as_str(), "sh", path.as_str()]
        .map(OsString::from)
        .to_vec();
    let stdin = Some(step.body.clone().into_bytes());
    Prepared::new(step, "sh", args, stdin, format!("write {path}"))
}

/// `cat` of the file, whose output is then compared with the body.
pub fn prepare_check(step: &Step, path: &str, rootfs: &str) -> Prepared {
    let path = expand(path, rootfs);
    let args = ["--", path.as_str()].map(OsString::from).to_vec();
    Prepared::new(step, "cat", args, None, format!("check {path}"))
}

/// Whether the file was written.
pub fn judge_write(ran: &Ran) -> Verdict {
    written(ran)?;
    passed(Captures::new())
}

/// Whether the file could be read and reads as the body; with `bless`, a
/// mismatch becomes the block's new body.
pub fn judge_check(ran: &Ran, bless: bool) -> Verdict {
    written(ran)?;
    expected_output(ran, ran.step, 0, bless)
}

/// A failure unless `sh` or `cat` ended with 0.
fn written(ran: &Ran) -> Result<(), StepError> {
    if ran.exit == Exit::Code(0) {
        return Ok(());
    }
    Err(ran.error(format!("failed with {}", ran.exit), None, None))
}
