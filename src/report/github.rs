//! The GitHub sink: a workflow annotation (`::error file=…,line=…::…`) per
//! failed recipe, on the line of its failing step, so that a pull request
//! shows the failure where the page says it. Written to stderr (the runner
//! reads workflow commands there too), so stdout keeps its format; on when
//! `GITHUB_ACTIONS` is `true`, as in a workflow.

use std::io::Write;
use std::sync::Mutex;

use super::event::{Event, EventSink};
use crate::outcome::{Outcome, Status};

/// One `::error` line, with `%`, `\r`, `\n` and, in properties, `:` and
/// `,` escaped as the runner reads them.
pub fn annotation(path: &str, line: usize, message: &str) -> String {
    let data = |s: &str| {
        s.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
    };
    let property = |s: &str| data(s).replace(':', "%3A").replace(',', "%2C");
    format!(
        "::error file={},line={line}::{}\n",
        property(path),
        data(message)
    )
}

/// The annotation of a recipe that did not pass, if it failed.
pub fn of(o: &Outcome) -> Option<String> {
    let said = match (&o.status, &o.failure) {
        (Status::Passed | Status::Skipped(_) | Status::Interrupted, _) => return None,
        (_, Some(f)) => annotation(
            &f.step.path.display().to_string(),
            f.step.line,
            &format!(
                "recipe `{}` (fixture {}) {}: {} step: {}",
                o.id,
                o.fixture,
                o.status.as_str(),
                f.kind.as_str(),
                f.message
            ),
        ),
        (status, None) => annotation(
            &o.location.path.display().to_string(),
            o.location.line,
            &format!(
                "recipe `{}` (fixture {}) {}: {}",
                o.id,
                o.fixture,
                status.as_str(),
                status.reason().unwrap_or_default()
            ),
        ),
    };
    Some(said)
}

/// Writes an annotation per failed recipe to `out`.
pub struct Annotations<W: Write + Send> {
    out: Mutex<W>,
}

impl<W: Write + Send> Annotations<W> {
    pub fn new(out: W) -> Self {
        Annotations {
            out: Mutex::new(out),
        }
    }

    /// What was written (tests).
    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.out.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether this process runs in a GitHub Actions workflow.
pub fn in_workflow() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

impl<W: Write + Send> EventSink for Annotations<W> {
    fn event(&self, event: &Event) {
        let Event::RecipeFinished(outcome) = event else {
            return;
        };
        if let Some(text) = of(outcome) {
            let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::RunError;
    use crate::report::fake;

    #[test]
    fn a_failed_recipe_is_annotated_on_its_failing_step_and_a_passed_one_is_not() {
        let sink = Annotations::new(Vec::new());
        for o in [
            fake::failed("r"),
            fake::outcome("ok", Status::Passed),
            fake::outcome("s", Status::Skipped("requires lxc: no".into())),
            fake::outcome(
                "e",
                Status::Error(RunError::Reported("no base, here".into())),
            ),
        ] {
            sink.event(&Event::RecipeFinished(Box::new(o)));
        }
        assert_eq!(
            String::from_utf8(sink.into_inner()).unwrap(),
            "::error file=book/fr/src/p.md,line=21::recipe `r` (fixture empty) failed: console step: the output differs\n\
             ::error file=book/fr/src/p.md,line=3::recipe `e` (fixture empty) error: no base, here\n"
        );
    }

    #[test]
    fn properties_and_messages_are_escaped_as_the_runner_reads_them() {
        assert_eq!(
            annotation("a:b,c.md", 7, "50% done\r\nnext"),
            "::error file=a%3Ab%2Cc.md,line=7::50%25 done%0D%0Anext\n"
        );
    }
}
