//! What running recipes produces, shared by the runner that makes it and
//! the reports, the status store and the exit code that read it: each
//! recipe's [`Outcome`] (which serialises as the JSON `finished` event) and
//! their [`Tally`]. Pure data, like the model.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{Location, StepKind};

/// How a recipe run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Passed,
    Failed,
    TimedOut,
    Skipped(String),
    Interrupted,
    /// The run could not even try (a fixture that cannot be built, say).
    Error(RunError),
}

/// An error of the layers a run goes through (an environment's), as the
/// outcome keeps it: shared, and said by its `Display`.
pub type Cause = Arc<dyn std::error::Error + Send + Sync>;

/// Why a recipe run could not even try. Its `Display` is the `reason` of
/// every report.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RunError {
    /// Requirements the machine cannot meet (as `Skipped` says them), with
    /// `--require-all`.
    #[error("{0} (and --require-all is set)")]
    Required(String),
    /// `shell ID:LINE` names a line that opens no step of the recipe.
    #[error(
        "{}:{line}: line {line} opens no step of recipe `{recipe}` (its steps open at lines {})",
        .path.display(),
        lines_list(.lines)
    )]
    NoStepAt {
        path: PathBuf,
        line: usize,
        recipe: String,
        /// The lines its steps open at.
        lines: Vec<usize>,
    },
    /// Its environment could not be made.
    #[error(transparent)]
    Environment(Cause),
    /// Its environment could not be released after the steps passed.
    #[error("cannot clean up: {0}")]
    Cleanup(Cause),
    /// A reason read back from a JSON report: its cause was said, not kept.
    #[error("{0}")]
    Reported(String),
}

fn lines_list(lines: &[usize]) -> String {
    let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    lines.join(", ")
}

/// Reasons are equal when they are of one kind and say the same (the
/// errors they hold compare no other way).
impl PartialEq for RunError {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && self.to_string() == other.to_string()
    }
}

impl Eq for RunError {}

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

    /// Why it was skipped, or could not even try.
    pub fn reason(&self) -> Option<String> {
        match self {
            Status::Skipped(reason) => Some(reason.clone()),
            Status::Error(error) => Some(error.to_string()),
            _ => None,
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

/// The result of running one recipe. It serialises as the JSON `finished`
/// event (a contract: DESIGN.md §10); read back, what the event does not
/// carry (the step log, captures, blessings, the recipe's file) is empty.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(into = "wire::Finished", from = "wire::Finished")]
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
    pub checkpoint: Option<CheckpointNote>,
    /// Where the result was proven.
    pub provenance: crate::provenance::Provenance,
    /// Which attempt this was, from 1 (`--repeat`).
    pub attempt: u32,
    /// How the booted host came up (`host=`): its state and failed units.
    pub booted: Option<String>,
}

/// How a recipe's `needs` chain ran, as the report says it under the
/// result: from a checkpoint, or replayed and why. `chain` holds the ids of
/// the prerequisites, in order.
#[derive(Debug, Clone)]
pub enum CheckpointNote {
    /// Started from the chain's checkpoint, with what was made again
    /// beyond its files (its network).
    StartedFrom {
        chain: Vec<String>,
        restored: Option<String>,
    },
    /// The chain's checkpoint was kept, with what it keeps beyond files.
    Kept {
        chain: Vec<String>,
        note: Option<String>,
    },
    /// No checkpoint could be kept: the chain is replayed next time.
    NotKept { chain: Vec<String>, why: Cause },
    /// Its checkpoint could not be brought back: removed, and the chain
    /// replayed.
    Removed { chain: Vec<String>, why: Cause },
    /// A note read back from a JSON report, as it was said.
    Reported(String),
}

impl std::fmt::Display for CheckpointNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `a` → `b`
        let ids = |chain: &[String]| {
            let ids: Vec<String> = chain.iter().map(|id| format!("`{id}`")).collect();
            ids.join(" → ")
        };
        let more =
            |note: &Option<String>| note.as_ref().map(|n| format!(", {n}")).unwrap_or_default();
        match self {
            CheckpointNote::StartedFrom { chain, restored } => write!(
                f,
                "started from the checkpoint of {}{}",
                ids(chain),
                more(restored)
            ),
            CheckpointNote::Kept { chain, note } => {
                write!(f, "kept a checkpoint of {}{}", ids(chain), more(note))
            }
            CheckpointNote::NotKept { chain, why } => {
                write!(f, "{} is replayed: {why}", ids(chain))
            }
            CheckpointNote::Removed { chain, why } => write!(
                f,
                "{} is replayed: its checkpoint could not be brought back ({why}), so it was removed",
                ids(chain)
            ),
            CheckpointNote::Reported(said) => f.write_str(said),
        }
    }
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// How many outcomes ended each way (the fields of the JSON `summary`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// The JSON `finished` event of an outcome, field by field (a contract).
mod wire {
    use super::*;

    #[derive(Serialize, Deserialize)]
    pub struct Finished {
        id: String,
        lang: String,
        page: String,
        line: usize,
        fixture: String,
        status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        duration_ms: u64,
        steps_run: usize,
        attempt: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failure: Option<FailureLine>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kept: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        checkpoint: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        booted: Option<String>,
        provenance: crate::provenance::Provenance,
    }

    /// `expected` and `actual` are `null` when absent, never left out.
    #[derive(Serialize, Deserialize)]
    pub struct FailureLine {
        path: String,
        line: usize,
        kind: String,
        command: String,
        message: String,
        expected: Option<String>,
        actual: Option<String>,
        output: String,
    }

    impl From<Outcome> for Finished {
        fn from(o: Outcome) -> Finished {
            Finished {
                reason: o.status.reason(),
                status: o.status.as_str().to_string(),
                duration_ms: o.duration.as_millis() as u64,
                failure: o.failure.map(|f| FailureLine {
                    path: f.step.path.display().to_string(),
                    line: f.step.line,
                    kind: f.kind.as_str().to_string(),
                    command: f.command,
                    message: f.message,
                    expected: f.expected.map(|e| e.join("\n")),
                    actual: f.actual,
                    output: f.output,
                }),
                kept: o.kept.map(|k| k.display().to_string()),
                checkpoint: o.checkpoint.map(|c| c.to_string()),
                id: o.id,
                lang: o.lang,
                page: o.page,
                line: o.location.line,
                fixture: o.fixture,
                steps_run: o.steps_run,
                attempt: o.attempt,
                booted: o.booted,
                provenance: o.provenance,
            }
        }
    }

    fn status(said: &str, reason: Option<String>) -> Status {
        let reason = reason.unwrap_or_default();
        match said {
            "passed" => Status::Passed,
            "failed" => Status::Failed,
            "timed-out" => Status::TimedOut,
            "skipped" => Status::Skipped(reason),
            "interrupted" => Status::Interrupted,
            _ => Status::Error(RunError::Reported(reason)),
        }
    }

    fn kind(said: &str) -> StepKind {
        [
            StepKind::Script,
            StepKind::Console,
            StepKind::Rust,
            StepKind::File,
            StepKind::Check,
        ]
        .into_iter()
        .find(|k| k.as_str() == said)
        .unwrap_or(StepKind::Expect)
    }

    impl From<Finished> for Outcome {
        fn from(e: Finished) -> Outcome {
            Outcome {
                status: status(&e.status, e.reason),
                location: Location {
                    path: Arc::from(Path::new(&e.page)),
                    line: e.line,
                },
                duration: Duration::from_millis(e.duration_ms),
                failure: e.failure.map(|f| Failure {
                    step: Location {
                        path: Arc::from(Path::new(&f.path)),
                        line: f.line,
                    },
                    kind: kind(&f.kind),
                    command: f.command,
                    message: f.message,
                    expected: f
                        .expected
                        .map(|e| e.split('\n').map(str::to_string).collect()),
                    actual: f.actual,
                    output: f.output,
                    captures: Default::default(),
                }),
                kept: e.kept.map(PathBuf::from),
                checkpoint: e.checkpoint.map(CheckpointNote::Reported),
                id: e.id,
                lang: e.lang,
                page: e.page,
                fixture: e.fixture,
                steps_run: e.steps_run,
                log: Vec::new(),
                blessed: Vec::new(),
                provenance: e.provenance,
                attempt: e.attempt,
                booted: e.booted,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("`tar` failed in the sandbox")]
    struct Said;

    #[test]
    fn a_checkpoint_note_names_the_chain_and_why() {
        let chain = vec!["a".to_string(), "b".to_string()];
        let why: Cause = Arc::new(Said);
        let notes = [
            (
                CheckpointNote::StartedFrom {
                    chain: chain.clone(),
                    restored: None,
                },
                "started from the checkpoint of `a` → `b`",
            ),
            (
                CheckpointNote::StartedFrom {
                    chain: chain.clone(),
                    restored: Some("its network made again: br0".into()),
                },
                "started from the checkpoint of `a` → `b`, its network made again: br0",
            ),
            (
                CheckpointNote::Kept {
                    chain: chain.clone(),
                    note: None,
                },
                "kept a checkpoint of `a` → `b`",
            ),
            (
                CheckpointNote::Kept {
                    chain: vec!["a".into()],
                    note: Some("with its network: br0".into()),
                },
                "kept a checkpoint of `a`, with its network: br0",
            ),
            (
                CheckpointNote::NotKept {
                    chain: chain.clone(),
                    why: Arc::clone(&why),
                },
                "`a` → `b` is replayed: `tar` failed in the sandbox",
            ),
            (
                CheckpointNote::Removed { chain, why },
                "`a` → `b` is replayed: its checkpoint could not be brought back (`tar` failed in the sandbox), so it was removed",
            ),
        ];
        for (note, said) in notes {
            assert_eq!(note.to_string(), said);
        }
    }

    #[test]
    fn a_run_that_could_not_try_says_why() {
        let why: Cause = Arc::new(Said);
        let required = RunError::Required("requires lxc: not running as root".into());
        assert_eq!(
            required.to_string(),
            "requires lxc: not running as root (and --require-all is set)"
        );
        let no_step = RunError::NoStepAt {
            path: "book/en/p.md".into(),
            line: 7,
            recipe: "r".into(),
            lines: vec![3, 9],
        };
        assert_eq!(
            no_step.to_string(),
            "book/en/p.md:7: line 7 opens no step of recipe `r` (its steps open at lines 3, 9)"
        );
        let environment = Status::Error(RunError::Environment(Arc::clone(&why)));
        assert_eq!(
            environment.reason().as_deref(),
            Some("`tar` failed in the sandbox")
        );
        let cleanup = Status::Error(RunError::Cleanup(why));
        assert_eq!(
            cleanup.reason().as_deref(),
            Some("cannot clean up: `tar` failed in the sandbox")
        );
        assert_eq!(
            environment,
            Status::Error(RunError::Environment(Arc::new(Said)))
        );
        assert_ne!(environment, cleanup);
        assert_eq!(Status::Passed.reason(), None);
    }
}
