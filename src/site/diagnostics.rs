//! mdBook's own warnings and errors, shown to the user. mdBook logs them
//! through `tracing` and carries on (a broken `{{#include}}` leaves the raw
//! directive on the page); without a subscriber they vanish. This one prints
//! them on stderr and counts the errors, so `book build` can fail on them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// How many errors mdBook has logged since [`install`].
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    errors: Arc<AtomicUsize>,
}

impl Diagnostics {
    pub fn errors(&self) -> usize {
        self.errors.load(Ordering::SeqCst)
    }
}

struct CountErrors(Arc<AtomicUsize>);

impl<S: Subscriber> Layer<S> for CountErrors {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if *event.metadata().level() == Level::ERROR {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Prints warnings and errors logged from now on (`WARN mdbook_…: text`) to
/// stderr. Installed once per process; a second call returns a counter that
/// sees nothing.
pub fn install() -> Diagnostics {
    let diagnostics = Diagnostics::default();
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .without_time()
                .with_writer(std::io::stderr),
        )
        .with(CountErrors(Arc::clone(&diagnostics.errors)))
        .with(LevelFilter::WARN);
    let _ = tracing::subscriber::set_global_default(subscriber);
    diagnostics
}

/// An error and its causes on one line, as `error: a: b: c`.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
