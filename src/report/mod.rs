//! Outputs of a run, as sinks of one typed event stream
//! ([`event::Event`]): human text, JSON lines, JUnit XML and GitHub
//! annotations (the status store's recorder is `crate::status::Recorder`).
//! Reads only the model and the outcomes.

pub mod event;
pub mod github;
pub mod human;
pub mod json;
mod junit;

pub use event::{Event, EventSink};
pub use junit::Junit;

/// Output formats of `run` and `test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
}

/// The sink that shows a run in `format`: on stdout, human text or one
/// JSON event per line.
pub fn display(format: Format, quiet: bool) -> std::sync::Arc<dyn EventSink> {
    match format {
        Format::Human => std::sync::Arc::new(human::Human::new(quiet)),
        Format::Json => std::sync::Arc::new(json::JsonLines::new(std::io::stdout())),
    }
}

/// Outcomes for the sinks' tests.
#[cfg(test)]
pub(crate) mod fake {
    use std::path::Path;
    use std::time::Duration;

    use crate::model::{Location, StepKind};
    use crate::outcome::{Failure, Outcome, Status};

    pub fn outcome(id: &str, status: Status) -> Outcome {
        Outcome {
            id: id.into(),
            lang: "fr".into(),
            page: "p.md".into(),
            location: Location {
                path: Path::new("book/fr/src/p.md").into(),
                line: 3,
            },
            fixture: "empty".into(),
            status,
            duration: Duration::from_millis(1500),
            failure: None,
            steps_run: 2,
            kept: None,
            log: Vec::new(),
            blessed: Vec::new(),
            checkpoint: None,
            provenance: Default::default(),
            attempt: 1,
            booted: None,
        }
    }

    /// A recipe whose console step printed `réel` where `attendu` was
    /// expected, at line 21.
    pub fn failed(id: &str) -> Outcome {
        let mut o = outcome(id, Status::Failed);
        o.failure = Some(Failure {
            step: Location {
                path: Path::new("book/fr/src/p.md").into(),
                line: 21,
            },
            kind: StepKind::Console,
            command: "$ echo réel".into(),
            message: "the output differs".into(),
            expected: Some(vec!["attendu".into()]),
            actual: Some("réel\n".into()),
            output: "réel\n".into(),
            captures: Default::default(),
        });
        o
    }
}
