//! What the tables of the kinds' tests are made of: a step of a page, the
//! run it had, and the verdict written as one line.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::matcher::Captures;
use crate::model::{Action, Location, Step, Where};
use crate::process::Exit;
use crate::runner::verdict::{Ran, Verdict};

/// A block of `p.md` whose fence is on `line`.
pub fn step(line: usize, action: Action, body: &str) -> Step {
    Step {
        location: Location {
            path: Arc::from(Path::new("p.md")),
            line,
        },
        syntax: "sh".into(),
        attrs: Default::default(),
        body: body.into(),
        where_: Where::Host,
        timeout: None,
        action,
    }
}

/// `step`, run as `cmd`, that ended with `exit` having printed `output`,
/// after earlier steps captured `bound`; no `expect` block after it.
pub fn ran<'a>(step: &'a Step, exit: Exit, output: &'a str, bound: &'a Captures) -> Ran<'a> {
    Ran {
        step,
        expect: None,
        command: "cmd",
        exit,
        output,
        timeout: Duration::from_secs(90),
        bound,
    }
}

/// The verdict in one line: `passed` and what it captured (` NAME=value`);
/// `blessed +OFFSET` and the new body; or the status, the line and command
/// the failure points at, and its message.
pub fn line(verdict: &Verdict) -> String {
    match verdict {
        Ok(passed) => {
            let captures: String = passed
                .captures
                .iter()
                .map(|(k, v)| format!(" {k}={v}"))
                .collect();
            match &passed.blessing {
                None => format!("passed{captures}"),
                Some(b) => format!("blessed +{} {:?}{captures}", b.offset, b.body),
            }
        }
        Err(e) => format!(
            "{:?} at {} `{}`: {}",
            e.status, e.failure.step.line, e.failure.command, e.failure.message
        ),
    }
}
