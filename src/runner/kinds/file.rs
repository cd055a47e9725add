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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Action;
    use crate::runner::kinds::cases::{line, ran, step};

    #[test]
    fn judge_write_needs_sh_to_end_with_0() {
        let write = step(
            2,
            Action::WriteFile {
                path: "/etc/x".into(),
                mode: None,
            },
            "k=v\n",
        );
        let bound = Captures::new();
        // (exit, output, verdict)
        let rows = [
            (Exit::Code(0), "", "passed"),
            (
                Exit::Code(1),
                "sh: cannot create /etc/x: Read-only file system\n",
                "Failed at 2 `write /etc/x`: failed with exit code 1",
            ),
        ];
        for (exit, output, want) in rows {
            let ran = Ran {
                command: "write /etc/x",
                ..ran(&write, exit, output, &bound)
            };
            assert_eq!(line(&judge_write(&ran)), want, "{exit}");
        }
    }

    #[test]
    fn judge_check_compares_the_file_with_the_body() {
        let check = step(
            5,
            Action::CheckFile {
                path: "/etc/x".into(),
            },
            "k=[INT:k]\nb=2\n",
        );
        // (row, exit, the file as cat printed it, bless, verdict)
        let rows: &[(&str, Exit, &str, bool, &str)] = &[
            ("the same", Exit::Code(0), "k=1\nb=2\n", false, "passed k=1"),
            (
                "another file",
                Exit::Code(0),
                "k=1\nb=3\n",
                false,
                "Failed at 5 `check /etc/x`: output differs from the expected output",
            ),
            (
                "another file, blessed",
                Exit::Code(0),
                "k=1\nb=3\n",
                true,
                "blessed +0 \"k=[INT:k]\\nb=3\\n\" k=1",
            ),
            (
                "no file",
                Exit::Code(1),
                "cat: /etc/x: No such file or directory\n",
                true,
                "Failed at 5 `check /etc/x`: failed with exit code 1",
            ),
        ];
        let bound = Captures::new();
        for &(row, exit, output, bless, want) in rows {
            let ran = Ran {
                command: "check /etc/x",
                ..ran(&check, exit, output, &bound)
            };
            assert_eq!(line(&judge_check(&ran, bless)), want, "row `{row}`");
        }
    }

    #[test]
    fn prepare_expands_rootfs_and_sets_the_mode() {
        let action = Action::WriteFile {
            path: "$ROOTFS/etc/x".into(),
            mode: Some(0o640),
        };
        let write = step(1, action, "k=v\n");
        let prepared = prepare_write(&write, "$ROOTFS/etc/x", Some(0o640), "/tmp/root/");
        assert_eq!(prepared.command, "write /tmp/root/etc/x");
        assert_eq!(
            prepared.program.args,
            [
                "-c",
                "mkdir -p -- \"$(dirname -- \"$1\")\" && cat > \"$1\" && chmod 640 -- \"$1\"",
                "sh",
                "/tmp/root/etc/x"
            ]
        );
        assert_eq!(prepared.stdin.as_deref(), Some(&b"k=v\n"[..]));
        let prepared = prepare_check(&write, "/etc/x", "/tmp/root");
        assert_eq!(
            (prepared.command.as_str(), prepared.program.program.to_str()),
            ("check /etc/x", Some("cat"))
        );
        assert_eq!(prepared.program.args, ["--", "/etc/x"]);
    }
}
