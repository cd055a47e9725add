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
#[cfg(test)]
pub struct Discard;

#[cfg(test)]
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

impl EventSink for Gathered {
    fn event(&self, event: &Event) {
        self.hear(event)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::outcome::{CheckpointNote, RunError, Status};
    use crate::report::fake;
    use crate::report::json::line;

    const PROVENANCE: &str = r#""provenance":{"cgroup":"","distro":"","fixture":"","fixture_digest":"","host":"","kernel":"","lsm":[],"lxc":"","tool":""}"#;

    #[test]
    fn the_lines_of_earlier_versions_are_kept_byte_for_byte() {
        let started = Event::RecipeStarted(RecipeStarted {
            id: "r".into(),
            lang: "fr".into(),
            page: "p.md".into(),
            line: 3,
            fixture: "busybox".into(),
            host: None,
            chain: Vec::new(),
        });
        assert_eq!(
            line(&started),
            r#"{"event":"started","fixture":"busybox","id":"r","lang":"fr","line":3,"page":"p.md"}"#
        );
        let finished = Event::RecipeFinished(Box::new(fake::failed("r")));
        assert_eq!(
            line(&finished),
            format!(
                r#"{{"attempt":1,"duration_ms":1500,"event":"finished","failure":{{"actual":"réel\n","command":"$ echo réel","expected":"attendu","kind":"console","line":21,"message":"the output differs","output":"réel\n","path":"book/fr/src/p.md"}},"fixture":"empty","id":"r","lang":"fr","line":3,"page":"p.md",{PROVENANCE},"status":"failed","steps_run":2}}"#
            )
        );
        let mut skipped = fake::outcome("s", Status::Skipped("requires lxc: no".into()));
        skipped.checkpoint = Some(CheckpointNote::Kept {
            chain: vec!["a".into()],
            note: None,
        });
        skipped.kept = Some("/cache/kept/s".into());
        skipped.booted = Some("running in 2s".into());
        assert_eq!(
            line(&Event::RecipeFinished(Box::new(skipped))),
            format!(
                r#"{{"attempt":1,"booted":"running in 2s","checkpoint":"kept a checkpoint of `a`","duration_ms":1500,"event":"finished","fixture":"empty","id":"s","kept":"/cache/kept/s","lang":"fr","line":3,"page":"p.md",{PROVENANCE},"reason":"requires lxc: no","status":"skipped","steps_run":2}}"#
            )
        );
        let summary = Summary::of(&[fake::outcome("a", Status::Passed), fake::failed("b")]);
        assert_eq!(
            line(&Event::RunFinished(summary)),
            r#"{"errors":0,"event":"summary","failed":1,"interrupted":0,"passed":1,"skipped":0,"total":2}"#
        );
        let mut again = fake::failed("b");
        again.attempt = 2;
        let repeated = Summary::of(&[fake::outcome("b", Status::Passed), again]);
        assert_eq!(
            line(&Event::RunFinished(repeated)),
            r#"{"errors":0,"event":"summary","failed":1,"flaky":[{"attempts":2,"fixture":"empty","id":"b","passed":1}],"interrupted":0,"passed":1,"skipped":0,"total":2}"#
        );
        assert_eq!(
            line(&Event::Blessed {
                path: "book/fr/src/p.md".into()
            }),
            r#"{"event":"blessed","path":"book/fr/src/p.md"}"#
        );
        assert_eq!(
            line(&Event::NotBlessed {
                id: "r".into(),
                fixture: "empty".into(),
                location: "p.md:4".into(),
                message: "exit code 1".into(),
            }),
            r#"{"event":"not-blessed","fixture":"empty","id":"r","location":"p.md:4","message":"exit code 1"}"#
        );
    }

    #[test]
    fn every_event_reads_back_as_it_was_said() {
        let error = fake::outcome(
            "e",
            Status::Error(RunError::Environment(Arc::new(std::io::Error::other(
                "no base",
            )))),
        );
        let events = [
            Event::RunStarted { runs: 3, jobs: 2 },
            Event::Notice {
                message: "recipes: not root".into(),
            },
            Event::PackagesInstalling {
                packages: vec!["debootstrap".into()],
                commands: vec!["debootstrap".into()],
            },
            Event::PackagesInstalled {
                packages: vec!["debootstrap".into()],
            },
            Event::PackagesFailed {
                packages: vec!["x".into()],
                reason: "apt-get ended with exit code 100".into(),
            },
            Event::FixtureBuildStarted {
                fixture: "d".into(),
                how: "debootstrap bookworm".into(),
            },
            Event::FixtureBuildProgress {
                fixture: "d".into(),
                line: "I: Retrieving InRelease".into(),
            },
            Event::FixtureBuildFinished {
                fixture: "d".into(),
                duration_ms: 61_000,
                size_mb: Some(180),
                error: None,
            },
            Event::CheckpointKept {
                id: "u".into(),
                fixture: "busybox".into(),
                chain: vec!["base".into()],
                note: Some("with its network: br0".into()),
            },
            Event::CheckpointRestored {
                id: "u".into(),
                fixture: "busybox".into(),
                chain: vec!["base".into()],
                restored: None,
            },
            Event::CheckpointReplayed {
                id: "u".into(),
                fixture: "busybox".into(),
                chain: vec!["base".into()],
                why: "it leaves processes running (sleep)".into(),
            },
            Event::RecipeFinished(Box::new(fake::failed("r"))),
            Event::RecipeFinished(Box::new(error)),
            Event::RunFinished(Summary::of(&[fake::failed("r")])),
        ];
        for event in events {
            let said = line(&event);
            let read: Event = serde_json::from_str(&said).unwrap();
            assert_eq!(line(&read), said, "{said}");
        }
        // What a finished line does not carry reads back empty.
        let read: Event =
            serde_json::from_str(&line(&Event::RecipeFinished(Box::new(fake::failed("r")))))
                .unwrap();
        let Event::RecipeFinished(outcome) = read else {
            panic!("not a finished event");
        };
        assert_eq!(outcome.status, Status::Failed);
        let failure = outcome.failure.unwrap();
        assert_eq!(failure.expected, Some(vec!["attendu".to_string()]));
        assert_eq!(failure.step.to_string(), "book/fr/src/p.md:21");
        assert!(outcome.log.is_empty());
    }

    #[test]
    fn a_fanout_tells_every_sink_in_turn_and_gathered_outcomes_keep_the_plan_order() {
        let first = Gathered::new(Box::new(|o: &Outcome| if o.id == "a" { 0 } else { 1 }));
        let second = crate::report::json::JsonLines::new(Vec::new());
        let fanout = Fanout(vec![&first, &second, &Discard]);
        fanout.event(&Event::RecipeFinished(Box::new(fake::failed("b"))));
        fanout.event(&Event::RecipeFinished(Box::new(fake::outcome(
            "a",
            Status::Passed,
        ))));
        let ids: Vec<String> = first.take().into_iter().map(|o| o.id).collect();
        assert_eq!(ids, ["a", "b"]);
        let written = String::from_utf8(second.into_inner()).unwrap();
        assert_eq!(written.lines().count(), 2);
    }
}
