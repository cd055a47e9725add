//! What running recipes produces, shared by the runner that makes it and
//! the reports, the status store and the exit code that read it: each
//! recipe's [`Outcome`], the [`Reporter`] that hears of them as they come,
//! and their [`Tally`]. Pure data, like the model.

use std::path::PathBuf;
use std::time::Duration;

use crate::model::{Location, Recipe, StepKind};

/// Receives progress as recipes run (from several threads).
pub trait Reporter: Sync {
    /// A run begins: the recipe, on the run's fixture (not always the one
    /// it declares: `--fixture`, `needs`), in its booted host if any.
    fn started(&self, recipe: &Recipe, fixture: &str, host: Option<&str>);
    fn finished(&self, outcome: &Outcome);
}

/// How a recipe run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Passed,
    Failed,
    TimedOut,
    Skipped(String),
    Interrupted,
    /// The run could not even try (a fixture that cannot be built, say).
    Error(String),
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::TimedOut => "timed-out",
            Status::Skipped(_) => "skipped",
            Status::Interrupted => "interrupted",
            Status::Error(_) => "error",
        }
    }
}

/// Why a step failed, with what is needed to show it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub step: Location,
    pub kind: StepKind,
    /// The command or file the failure is about.
    pub command: String,
    pub message: String,
    pub expected: Option<Vec<String>>,
    pub actual: Option<String>,
    /// The full output of the step, shown when there is no diff.
    pub output: String,
    /// What earlier steps captured, which the expected lines used.
    pub captures: std::collections::BTreeMap<String, String>,
}

/// The result of running one recipe.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub id: String,
    pub lang: String,
    pub page: String,
    pub location: Location,
    pub fixture: String,
    pub status: Status,
    pub duration: Duration,
    pub failure: Option<Failure>,
    pub steps_run: usize,
    /// Where the fixture was kept (`--keep`).
    pub kept: Option<PathBuf>,
    /// Each step's place, time and output, kept with `--verbose`.
    pub log: Vec<(Location, Duration, String)>,
    /// New expected bodies, with `--bless`.
    pub blessed: Vec<Blessed>,
    /// How its `needs` chain ran: from a checkpoint, or replayed and why.
    pub checkpoint: Option<String>,
    /// Where the result was proven.
    pub provenance: crate::provenance::Provenance,
    /// Which attempt this was, from 1 (`--repeat`).
    pub attempt: u32,
    /// How the booted host came up (`host=`): its state and failed units.
    pub booted: Option<String>,
}

/// A step whose expected output `--bless` rewrote.
#[derive(Debug, Clone)]
pub struct Blessed {
    pub recipe: String,
    /// Index of the step in its recipe.
    pub step: usize,
    pub location: Location,
    /// The new body, with `\n` line endings.
    pub body: String,
}

impl Outcome {
    /// Its key in the status store ([`crate::model::result_key`]).
    pub fn result_key(&self) -> String {
        let host = Some(self.provenance.host.as_str()).filter(|h| *h != "none");
        crate::model::result_key(&self.fixture, host)
    }
}

/// A recipe that passed only some of its attempts (`--repeat`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Flaky {
    pub id: String,
    pub fixture: String,
    pub passed: usize,
    pub attempts: usize,
}

/// The recipes (on a fixture) that passed some of their attempts and not
/// the others, in the order they first ran.
pub fn flaky(outcomes: &[Outcome]) -> Vec<Flaky> {
    let mut seen: Vec<Flaky> = Vec::new();
    for o in outcomes {
        if matches!(o.status, Status::Skipped(_) | Status::Interrupted) {
            continue;
        }
        let passed = usize::from(o.status == Status::Passed);
        match seen
            .iter_mut()
            .find(|f| f.id == o.id && f.fixture == o.fixture)
        {
            Some(f) => {
                f.passed += passed;
                f.attempts += 1;
            }
            None => seen.push(Flaky {
                id: o.id.clone(),
                fixture: o.fixture.clone(),
                passed,
                attempts: 1,
            }),
        }
    }
    seen.retain(|f| f.passed > 0 && f.passed < f.attempts);
    seen
}

/// How many outcomes ended each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub total: usize,
    pub passed: usize,
    /// Failed or timed out.
    pub failed: usize,
    pub skipped: usize,
    pub errors: usize,
    pub interrupted: usize,
}

impl Tally {
    pub fn of<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> Tally {
        let mut tally = Tally::default();
        for o in outcomes {
            tally.total += 1;
            match o.status {
                Status::Passed => tally.passed += 1,
                Status::Failed | Status::TimedOut => tally.failed += 1,
                Status::Skipped(_) => tally.skipped += 1,
                Status::Error(_) => tally.errors += 1,
                Status::Interrupted => tally.interrupted += 1,
            }
        }
        tally
    }
}
