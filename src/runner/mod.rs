//! Orchestration: runs selected recipes (their `needs` first, in the same
//! environment), step by step, under process supervision, in parallel when
//! asked, and says what happens as events (each [`Outcome`] among them).

mod kinds;
mod shell;
mod step;
mod verdict;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use crate::checkpoint::Checkpoint;
pub use crate::env::{Direct, EnvError, Environment, StepProgram};
use crate::matcher::Captures;
use crate::model::{Action, Location, Recipe, Requirement, Step, Where};
use crate::outcome::{Blessed, CheckpointNote, Outcome, RunError, Status};
use crate::plan::RecipeRun;
use crate::process::Supervisor;
use crate::provenance::Provenance;
use crate::report::event::{Event, EventSink, RecipeStarted};
pub use shell::ShellAt;
use step::Prepared;
use verdict::{Passed, Ran, StepError};

/// Settings of one run, already validated.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub default_timeout: Duration,
    pub jobs: usize,
    pub require_all: bool,
    pub cache_dir: PathBuf,
    pub lib_dir: PathBuf,
    /// Keep every step's output in the outcome.
    pub verbose: bool,
    /// Turn output mismatches into new expected bodies instead of failures.
    pub bless: bool,
    /// Start `needs` chains from their checkpoints (and make them).
    pub checkpoints: bool,
    /// Open a shell in the sandbox of the recipe run (one at a time).
    pub shell: Option<ShellAt>,
}

/// Makes the environment a recipe runs in.
pub trait EnvironmentFactory: Sync {
    /// The environment the plan describes for `run` (its fixture, booted
    /// host, limits, `at=`, network); with `from`, on top of that
    /// checkpoint (the state its prerequisites left).
    fn create(
        &self,
        run: &RecipeRun,
        from: Option<&Checkpoint>,
    ) -> Result<Box<dyn Environment>, EnvError>;
    /// Where the state at the end of `prerequisites` on `fixture` is kept,
    /// if this environment keeps checkpoints.
    fn checkpoint(&self, _fixture: &str, _prerequisites: &[&Recipe]) -> Option<Checkpoint> {
        None
    }
    /// Why a requirement cannot be met here, if it cannot.
    fn unmet(&self, requirement: Requirement) -> Option<String>;
}

/// The provenance of a result on a fixture (called when its run starts).
pub type ProvenanceOf<'a> = &'a (dyn Fn(&str) -> Provenance + Sync);

/// The order to start `runs` in: the longest first by their `expected`
/// durations (those never measured before all others, in the plan's order),
/// so that with several jobs a long recipe never starts last.
pub fn longest_first<T>(runs: &[T], expected: impl Fn(&T) -> Option<Duration>) -> Vec<usize> {
    let mut order: Vec<(usize, Option<Duration>)> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| (i, expected(r)))
        .collect();
    // Stable: equal durations keep the plan's order. `None` sorts first.
    order.sort_by(|a, b| match (a.1, b.1) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        (Some(x), Some(y)) => y.cmp(&x),
    });
    order.into_iter().map(|(i, _)| i).collect()
}

/// The lowest weight [`cpu_weight`] gives, a twentieth of the default: a
/// short recipe's waits (a boot, a DHCP lease) still see the processors.
pub const MIN_CPU_WEIGHT: u16 = crate::model::CPU_WEIGHT / 20;

/// The share of busy processors for a run `expected` to take so long when
/// the longest of the run takes `longest`: the square of its fraction of the
/// longest, so that the longest, which bounds the whole run, outweighs the
/// several shorter ones that share the processors with it at any moment
/// (half as long weighs a quarter); the default (the longest's) for one
/// never measured, and never under [`MIN_CPU_WEIGHT`].
pub fn cpu_weight(expected: Option<Duration>, longest: Option<Duration>) -> u16 {
    let full = crate::model::CPU_WEIGHT;
    match (expected, longest) {
        (Some(e), Some(l)) if !l.is_zero() => {
            let fraction = (e.as_secs_f64() / l.as_secs_f64()).min(1.0);
            ((f64::from(full) * fraction * fraction).round() as u16).clamp(MIN_CPU_WEIGHT, full)
        }
        _ => full,
    }
}

/// What a run needs beside its plan: its settings, where environments come
/// from, the supervision of every process, where events go and the
/// provenance of results.
pub struct RunContext<'a> {
    pub config: &'a RunConfig,
    pub factory: &'a dyn EnvironmentFactory,
    pub supervisor: &'a Arc<Supervisor>,
    pub events: &'a dyn EventSink,
    pub provenance: ProvenanceOf<'a>,
}

/// Runs the planned runs with up to `config.jobs` in parallel, starting
/// them in `order` (indices into `selected`; the plan's order when empty),
/// each said as a `started` and a `finished` event; outcomes come back in
/// the order of the plan.
pub fn run_all(selected: &[RecipeRun], order: &[usize], cx: &RunContext) -> Vec<Outcome> {
    let next = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<Option<Outcome>>> = Mutex::new(vec![None; selected.len()]);
    std::thread::scope(|scope| {
        for _ in 0..cx.config.jobs.clamp(1, selected.len().max(1)) {
            scope.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                let i = if order.is_empty() {
                    n
                } else {
                    match order.get(n) {
                        Some(&i) => i,
                        None => break,
                    }
                };
                let Some(run) = selected.get(i) else {
                    break;
                };
                cx.events.event(&Event::RecipeStarted(started(run)));
                let outcome = cx.run(run);
                cx.events
                    .event(&Event::RecipeFinished(Box::new(outcome.clone())));
                outcomes.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(outcome);
            });
        }
    });
    outcomes
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

/// The `started` event of a run: the run's fixture and host (not the ones
/// its recipe declares), after its prerequisites.
pub fn started(run: &RecipeRun) -> RecipeStarted {
    let recipe = run.recipe;
    RecipeStarted {
        id: recipe.id.clone(),
        lang: recipe.lang.clone(),
        page: recipe.page.clone(),
        line: recipe.location.line,
        fixture: run.fixture.clone(),
        host: run.host.clone(),
        chain: ids(prerequisites(run)),
    }
}

/// The recipes that run before `run`'s own, in order.
fn prerequisites<'r, 'a>(run: &'r RecipeRun<'a>) -> &'r [&'a Recipe] {
    &run.chain[..run.chain.len().saturating_sub(1)]
}

/// The ids of a chain, in order.
fn ids(chain: &[&Recipe]) -> Vec<String> {
    chain.iter().map(|r| r.id.clone()).collect()
}

/// An environment made for a run: where its chain starts (after a
/// restored checkpoint) and where to keep one.
struct Opened {
    env: Box<dyn Environment>,
    skip: usize,
    capture: Option<Checkpoint>,
}

impl RunContext<'_> {
    /// Skipped (or an error, with `--require-all`) when the machine cannot
    /// meet what the chain requires.
    fn unmet(&self, requires: &[Requirement]) -> Option<Status> {
        let unmet: Vec<String> = requires
            .iter()
            .filter_map(|r| {
                self.factory
                    .unmet(*r)
                    .map(|why| format!("requires {}: {why}", r.as_str()))
            })
            .collect();
        if unmet.is_empty() {
            return None;
        }
        let reason = unmet.join("; ");
        Some(if self.config.require_all {
            Status::Error(RunError::Required(reason))
        } else {
            Status::Skipped(reason)
        })
    }

    /// One run: gate, environment, chain, close.
    fn run(&self, run: &RecipeRun) -> Outcome {
        let start = Instant::now();
        let mut outcome = Outcome {
            id: run.recipe.id.clone(),
            lang: run.recipe.lang.clone(),
            page: run.recipe.page.clone(),
            location: run.recipe.location.clone(),
            fixture: run.fixture.clone(),
            status: Status::Passed,
            duration: Duration::ZERO,
            failure: None,
            steps_run: 0,
            kept: None,
            log: Vec::new(),
            blessed: Vec::new(),
            checkpoint: None,
            provenance: (self.provenance)(&run.fixture),
            attempt: run.attempt,
            booted: None,
        };
        outcome.provenance.host = run.host.clone().unwrap_or_else(|| "none".into());
        if let Some(status) = self.gate(run) {
            outcome.status = status;
            return outcome;
        }
        let opened = match self.environment(run, &mut outcome) {
            Ok(opened) => opened,
            Err(why) => {
                outcome.status = Status::Error(RunError::Environment(Arc::new(why)));
                outcome.duration = start.elapsed();
                return outcome;
            }
        };
        let capture = opened.capture.as_ref().map(|c| (c, prerequisites(run)));
        let env = opened.env.as_ref();
        let shell_opened = self.run_chain(env, run, opened.skip, capture, &mut outcome);
        if self.config.shell == Some(ShellAt::End)
            && !shell_opened
            && outcome.status == Status::Passed
        {
            self.shell(env, run.recipe, &Captures::new(), "after its last step");
        }
        self.close(opened.env, &mut outcome);
        outcome.duration = start.elapsed();
        outcome
    }

    /// Why the run cannot start at all: requirements the machine cannot
    /// meet, an interrupted run, a `shell ID:LINE` that names no step.
    fn gate(&self, run: &RecipeRun) -> Option<Status> {
        if let Some(status) = self.unmet(&run.requires) {
            return Some(status);
        }
        if self.supervisor.interrupted() {
            return Some(Status::Interrupted);
        }
        self.shell_line_problem(run.recipe).map(Status::Error)
    }

    /// The run's environment: on its prerequisites' checkpoint when there
    /// is one (removed, and the chain replayed, when it cannot be brought
    /// back), else fresh, with where to keep the checkpoint.
    fn environment(&self, run: &RecipeRun, outcome: &mut Outcome) -> Result<Opened, EnvError> {
        let fixture = &run.fixture;
        let prerequisites = prerequisites(run);
        // A booted host always holds processes: its chains are replayed.
        let checkpoint =
            (self.config.checkpoints && !prerequisites.is_empty() && run.host.is_none())
                .then(|| self.factory.checkpoint(fixture, prerequisites))
                .flatten();
        let mut from = checkpoint.as_ref().filter(|c| c.exists());
        let mut created = self.factory.create(run, from);
        let mut keep_checkpoint = true;
        if let Some(broken) = from.filter(|_| created.is_err()) {
            // A checkpoint that cannot be brought back is removed, and the
            // chain replayed: never a run that fails for it, again and again.
            let _ = std::fs::remove_dir_all(&broken.dir);
            if let Err(why) = created {
                let why = Arc::new(why);
                self.note(
                    run,
                    outcome,
                    CheckpointNote::Removed {
                        chain: ids(prerequisites),
                        why,
                    },
                );
            }
            from = None;
            keep_checkpoint = false;
            created = self.factory.create(run, None);
        }
        let env = created?;
        // The base is built now: its release can be read.
        outcome.provenance = Provenance {
            host: outcome.provenance.host.clone(),
            ..(self.provenance)(fixture)
        };
        outcome.booted = env.booted();
        let restored = from.is_some();
        if restored {
            self.note(
                run,
                outcome,
                CheckpointNote::StartedFrom {
                    chain: ids(prerequisites),
                    restored: env.restored(),
                },
            );
        }
        Ok(Opened {
            env,
            skip: if restored { prerequisites.len() } else { 0 },
            capture: checkpoint.filter(|_| !restored && keep_checkpoint),
        })
    }

    /// Releases the environment (or keeps it, `--keep`); a release that
    /// fails after passing steps is the run's error.
    fn close(&self, env: Box<dyn Environment>, outcome: &mut Outcome) {
        match env.close() {
            Ok(kept) => outcome.kept = kept,
            Err(why) if outcome.status == Status::Passed => {
                outcome.status = Status::Error(RunError::Cleanup(Arc::new(why)))
            }
            Err(_) => {}
        }
    }

    /// Notes how the chain ran in the outcome, and says it as an event.
    fn note(&self, run: &RecipeRun, outcome: &mut Outcome, note: CheckpointNote) {
        let (id, fixture) = (run.recipe.id.clone(), run.fixture.clone());
        let event = match &note {
            CheckpointNote::StartedFrom { chain, restored } => Event::CheckpointRestored {
                id,
                fixture,
                chain: chain.clone(),
                restored: restored.clone(),
            },
            CheckpointNote::Kept { chain, note } => Event::CheckpointKept {
                id,
                fixture,
                chain: chain.clone(),
                note: note.clone(),
            },
            CheckpointNote::NotKept { chain, why } => Event::CheckpointReplayed {
                id,
                fixture,
                chain: chain.clone(),
                why: why.to_string(),
            },
            CheckpointNote::Removed { chain, why } => Event::CheckpointReplayed {
                id,
                fixture,
                chain: chain.clone(),
                why: format!("its checkpoint could not be brought back ({why}), so it was removed"),
            },
            CheckpointNote::Reported(_) => return,
        };
        self.events.event(&event);
        outcome.checkpoint = Some(note);
    }

    /// Runs the steps of `run`'s chain from position `skip` (after a
    /// checkpoint), keeping a checkpoint once the prerequisites have run
    /// when `capture` says so; returns whether a shell was opened.
    fn run_chain(
        &self,
        env: &dyn Environment,
        run: &RecipeRun,
        skip: usize,
        capture: Option<(&Checkpoint, &[&Recipe])>,
        outcome: &mut Outcome,
    ) -> bool {
        let (recipe, chain) = (run.recipe, &run.chain);
        let mut shell_opened = false;
        'recipes: for (position, r) in chain.iter().enumerate().skip(skip) {
            if let Some((checkpoint, prerequisites)) = capture.filter(|(_, p)| position == p.len())
            {
                let chain = ids(prerequisites);
                let note = match env.capture(&checkpoint.dir) {
                    Ok(note) => CheckpointNote::Kept { chain, note },
                    Err(why) => CheckpointNote::NotKept {
                        chain,
                        why: Arc::new(why),
                    },
                };
                self.note(run, outcome, note);
            }
            // Captures reach the later steps of their own recipe only.
            let mut captures = Captures::new();
            for (i, step) in r.steps.iter().enumerate() {
                if self.config.shell == Some(ShellAt::Before(step.location.line))
                    && r.id == recipe.id
                {
                    self.shell(env, r, &captures, &format!("before {}", step.location));
                    shell_opened = true;
                    break 'recipes;
                }
                if matches!(step.action, Action::Expect) {
                    continue;
                }
                outcome.steps_run += 1;
                let log = self.config.verbose.then_some(&mut outcome.log);
                let ran = self.run_step(env, r, step, r.expect_for(i), log, &captures);
                match ran {
                    Ok(Passed {
                        captures: found,
                        blessing,
                    }) => {
                        captures.extend(found);
                        let Some(blessing) = blessing else {
                            continue;
                        };
                        let target = &r.steps[i + blessing.offset];
                        outcome.blessed.push(Blessed {
                            recipe: r.id.clone(),
                            step: i + blessing.offset,
                            location: target.location.clone(),
                            body: blessing.body,
                        });
                    }
                    Err(e) => {
                        self.failed(env, r, &captures, e, outcome);
                        break 'recipes;
                    }
                }
            }
        }
        shell_opened
    }

    /// A failed step ends the run: its failure, explained by the limits
    /// the sandbox ran into, and a shell there with `--shell-on-fail`.
    fn failed(
        &self,
        env: &dyn Environment,
        recipe: &Recipe,
        captures: &Captures,
        e: StepError,
        outcome: &mut Outcome,
    ) {
        outcome.status = e.status;
        let mut failure = *e.failure;
        // A limit the sandbox ran into explains the failure better than its
        // symptoms (EAGAIN, a killed step).
        for why in env.diagnose() {
            failure.message = format!("{}; {why}", failure.message);
        }
        if self.config.shell == Some(ShellAt::Failure) {
            let at = format!("where {} failed", failure.step);
            self.shell(env, recipe, captures, &at);
        }
        outcome.failure = Some(failure);
    }

    /// A `shell ID:LINE` whose line opens no step of the recipe.
    fn shell_line_problem(&self, recipe: &Recipe) -> Option<RunError> {
        let Some(ShellAt::Before(line)) = self.config.shell else {
            return None;
        };
        if recipe.steps.iter().any(|s| s.location.line == line) {
            return None;
        }
        Some(RunError::NoStepAt {
            path: recipe.location.path.to_path_buf(),
            line,
            recipe: recipe.id.clone(),
            lines: recipe.steps.iter().map(|s| s.location.line).collect(),
        })
    }

    /// Opens a shell in `env`; a shell that cannot start is said, and the
    /// run goes on to tear the sandbox down.
    fn shell(&self, env: &dyn Environment, recipe: &Recipe, captures: &Captures, why: &str) {
        if let Err(e) = shell::open(env, recipe, captures, &self.config.lib_dir, why) {
            eprintln!("recipes: {e}");
        }
    }

    fn run_step(
        &self,
        env: &dyn Environment,
        recipe: &Recipe,
        step: &Step,
        expect: Option<&Step>,
        log: Option<&mut Vec<(Location, Duration, String)>>,
        captures: &Captures,
    ) -> Result<Passed, StepError> {
        // Inside a chroot, the fixture is the root.
        let rootfs = match step.where_ {
            Where::Chroot => "/".to_string(),
            Where::Host => env.rootfs(),
        };
        let timeout = step.timeout.unwrap_or(self.config.default_timeout);
        let Prepared {
            program,
            stdin,
            command: text,
        } = match kinds::prepare(
            step,
            env,
            &rootfs,
            &self.config.cache_dir,
            self.supervisor,
            timeout,
        ) {
            Ok(Some(prepared)) => prepared,
            Ok(None) => return Ok(Passed::default()),
            Err(e) => return Err(StepError::failed(step, &e.command, e.to_string())),
        };
        let fail = |message: String| StepError::failed(step, &text, message);
        let mut command = env.command(&program).map_err(|e| fail(e.to_string()))?;
        step::set_env(&mut command, env, &rootfs, recipe, &self.config.lib_dir);
        command.envs(captures);
        let bound = kinds::bound(step, timeout);
        let started = Instant::now();
        let finished = self
            .supervisor
            .run(command, stdin, bound)
            .map_err(|e| fail(format!("cannot start {:?}: {e}", program.program)))?;
        let output = String::from_utf8_lossy(&finished.output).into_owned();
        if let Some(log) = log {
            let took = started.elapsed();
            log.push((step.location.clone(), took, kinds::shown(step, &output)));
        }
        let ran = Ran {
            step,
            expect,
            command: &text,
            exit: finished.exit,
            output: &output,
            timeout,
            bound: captures,
        };
        kinds::judge(&ran, self.config.bless)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_start_longest_first_and_unmeasured_ones_before_all() {
        let ms = |m: u64| Some(Duration::from_millis(m));
        let expected = [ms(100), None, ms(3000), ms(100), None, ms(500)];
        assert_eq!(longest_first(&expected, |e| *e), [1, 4, 2, 5, 0, 3]);
        assert!(longest_first(&[] as &[Option<Duration>], |e| *e).is_empty());
    }

    #[test]
    fn weights_follow_the_expected_time_squared_between_a_twentieth_and_the_default() {
        let s = |secs: u64| Some(Duration::from_secs(secs));
        assert_eq!(cpu_weight(s(60), s(60)), 100);
        assert_eq!(cpu_weight(s(30), s(60)), 25);
        assert_eq!(cpu_weight(s(45), s(60)), 56);
        assert_eq!(cpu_weight(s(15), s(60)), MIN_CPU_WEIGHT + 1);
        assert_eq!(cpu_weight(s(1), s(60)), MIN_CPU_WEIGHT);
        assert_eq!(cpu_weight(Some(Duration::ZERO), s(60)), MIN_CPU_WEIGHT);
        // Never measured: as heavy as the longest.
        assert_eq!(cpu_weight(None, s(60)), 100);
        assert_eq!(cpu_weight(s(5), None), 100);
        assert_eq!(cpu_weight(s(5), Some(Duration::ZERO)), 100);
    }
}
