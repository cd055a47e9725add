//! `sh` and `bash` blocks: the body run by that shell with `-eu` (bash
//! adds `pipefail`); the step must end with its `exit=`, and print what an
//! `expect` block after it says.

use std::ffi::OsString;

use crate::matcher::Captures;
use crate::model::{ExpectedExit, Step};
use crate::process::Exit;
use crate::runner::step::Prepared;
use crate::runner::verdict::{expected_output, passed, Ran, Verdict};

/// The shell named by the block's syntax, with the body as its script.
pub fn prepare(step: &Step) -> Prepared {
    let os = |s: &str| OsString::from(s);
    let mut args = vec![os("-eu")];
    if step.syntax == "bash" {
        args.extend([os("-o"), os("pipefail")]);
    }
    args.extend([os("-c"), os(&step.body)]);
    Prepared::new(step, &step.syntax, args, None, step.body.clone())
}

/// Whether a program (a script, or a rust step) ended as `exit` says, and
/// then printed what the `expect` block after it holds, if there is one.
pub fn judge(ran: &Ran, exit: ExpectedExit, bless: bool) -> Verdict {
    let ok = match exit {
        ExpectedExit::Any => !matches!(ran.exit, Exit::Signal(_)),
        ExpectedExit::Code(c) => ran.exit == Exit::Code(c),
    };
    if !ok {
        let want = match exit {
            ExpectedExit::Any => "any exit code".to_string(),
            ExpectedExit::Code(c) => format!("exit code {c}"),
        };
        let message = format!("ended with {}, expected {want}", ran.exit);
        return Err(ran.error(message, None, None));
    }
    match ran.expect {
        Some(expect) => expected_output(ran, expect, 1, bless),
        None => passed(Captures::new()),
    }
}
