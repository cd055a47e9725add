//! The one stream a run reports through, nextest-style: every stage (the
//! installer, fixture builds, the runner, blessing) says what happens as a
//! typed [`Event`], and every output is an [`EventSink`] of that stream:
//! human text, JSON lines, JUnit, the status store. Under `--format json`
//! each event is one line of stdout, `serde_json` of the enum: the `event`
//! field names its kind (a contract: DESIGN.md §10).
//!
//! This file is ground: data and a trait, naming only `outcome`.

use serde::{Deserialize, Serialize};

use crate::outcome::{Flaky, Outcome, Tally};

/// What happened, in the order it happened (events of concurrent recipes
/// and builds interleave).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A run begins: how many recipe runs it holds (attempts counted), on
    /// how many jobs.
    RunStarted {
        runs: usize,
        jobs: usize,
    },
    /// A sentence for the person at the terminal: a host warning, a
    /// fallback, what was selected.
    Notice {
        message: String,
    },
    /// `apt-get` is about to install `packages`, for the missing `commands`.
    PackagesInstalling {
        packages: Vec<String>,
        commands: Vec<String>,
    },
    PackagesInstalled {
        packages: Vec<String>,
    },
    PackagesFailed {
        packages: Vec<String>,
        reason: String,
    },
    /// A base starts building: `how` is `debootstrap SUITE` or `busybox`.
    FixtureBuildStarted {
        fixture: String,
        how: String,
    },
    /// A line of the build's output (debootstrap's), as it comes.
    FixtureBuildProgress {
        fixture: String,
        line: String,
    },
    /// A base was built (`size_mb`), or not (`error`, the build's reason).
    FixtureBuildFinished {
        fixture: String,
        duration_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size_mb: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A recipe run begins, on the run's fixture (not always the one it
    /// declares: `--fixture`, `needs`), in its booted host if any, after
    /// its prerequisites (`chain`, left out when none).
    #[serde(rename = "started")]
    RecipeStarted(RecipeStarted),
    /// The state after the prerequisites was kept as a checkpoint (`note`:
    /// what it keeps beyond files).
    CheckpointKept {
        id: String,
        fixture: String,
        chain: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// The run started from the prerequisites' checkpoint (`restored`: what
    /// was made again beyond files).
    CheckpointRestored {
        id: String,
        fixture: String,
        chain: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        restored: Option<String>,
    },
    /// The prerequisites are (or will next time be) replayed, and why.
    CheckpointReplayed {
        id: String,
        fixture: String,
        chain: Vec<String>,
        why: String,
    },
    /// A recipe run ended: its whole outcome (the JSON line carries its
    /// contract fields).
    #[serde(rename = "finished")]
    RecipeFinished(Box<Outcome>),
    /// Every run ended: the tally.
    #[serde(rename = "summary")]
    RunFinished(Summary),
    /// `--bless` rewrote a page.
    Blessed {
        path: String,
    },
    /// `--bless` could not turn a failure into expected output.
    NotBlessed {
        id: String,
        fixture: String,
        location: String,
        message: String,
    },
}

/// The `started` event of a recipe run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipeStarted {
    pub id: String,
    pub lang: String,
    pub page: String,
    pub line: usize,
    pub fixture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The prerequisites that run first, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
}

/// The `summary` event: the tally, and with `--repeat` the flaky recipes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    #[serde(flatten)]
    pub tally: Tally,
    /// Present when some recipe ran more than once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flaky: Option<Vec<Flaky>>,
}

impl Summary {
    pub fn of(outcomes: &[Outcome]) -> Summary {
        Summary {
            tally: Tally::of(outcomes),
            flaky: outcomes
                .iter()
                .any(|o| o.attempt > 1)
                .then(|| crate::outcome::flaky(outcomes)),
        }
    }
}

/// Hears every event of a run, from several threads.
pub trait EventSink: Send + Sync {
    fn event(&self, event: &Event);
}

/// Several sinks, each told every event in turn.
pub struct Fanout<'a>(pub Vec<&'a dyn EventSink>);

impl EventSink for Fanout<'_> {
    fn event(&self, event: &Event) {
        for sink in &self.0 {
            sink.event(event);
        }
    }
}

/// Hears nothing (tests, and code run outside a report).
pub struct Discard;

impl EventSink for Discard {
    fn event(&self, _: &Event) {}
}

/// A sink that shares `S` (the installer holds the run's display).
impl<S: EventSink + ?Sized> EventSink for std::sync::Arc<S> {
    fn event(&self, event: &Event) {
        (**self).event(event)
    }
}

/// Where an outcome stands in the plan (the order reports keep).
pub type Rank = Box<dyn Fn(&Outcome) -> usize + Send + Sync>;

/// The outcomes a sink gathers as recipes finish (in any order, with
/// several jobs), given back in the plan's order.
pub struct Gathered {
    outcomes: std::sync::Mutex<Vec<Outcome>>,
    rank: Rank,
}

impl Gathered {
    pub fn new(rank: Rank) -> Gathered {
        Gathered {
            outcomes: std::sync::Mutex::new(Vec::new()),
            rank,
        }
    }

    /// Keeps the outcome of a `finished` event.
    pub fn hear(&self, event: &Event) {
        if let Event::RecipeFinished(outcome) = event {
            let mut outcomes = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
            outcomes.push((**outcome).clone());
        }
    }

    /// Every outcome heard so far, in the plan's order.
    pub fn take(&self) -> Vec<Outcome> {
        let mut outcomes =
            std::mem::take(&mut *self.outcomes.lock().unwrap_or_else(|e| e.into_inner()));
        outcomes.sort_by_key(|o| (self.rank)(o));
        outcomes
    }
}
