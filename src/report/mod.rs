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
pub use junit::{write_junit, Junit};

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
