//! Orchestration: runs selected recipes (their `needs` first, in the same
//! environment), step by step, under process supervision, in parallel when
//! asked, and hands each [`Outcome`] to a reporter.

pub mod env;
pub mod process;
pub mod rust;
mod session;
mod step;
mod transcript;
mod verdict;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::model::{Location, Recipe, Requirement, Step, StepKind, Where};
use crate::outcome::{Blessed, Outcome, Reporter, Status};
use crate::plan::RecipeRun;
pub use env::{Direct, Environment, StepProgram};
use process::Supervisor;
use step::Prepared;
use verdict::{Blessing, Ran, StepError};

/// Settings of one run, already validated.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub default_timeout: Duration,
    pub jobs: usize,
    pub keep: bool,
    pub require_all: bool,
    pub cache_dir: PathBuf,
    pub lib_dir: PathBuf,
    /// Keep every step's output in the outcome.
    pub verbose: bool,
    /// Turn output mismatches into new expected bodies instead of failures.
    pub bless: bool,
}

/// Makes the environment a recipe runs in.
pub trait EnvironmentFactory: Sync {
    fn create(
        &self,
        recipe: &Recipe,
        fixture: &str,
        chain: &[&Recipe],
    ) -> Result<Box<dyn Environment>, String>;
    /// Why a requirement cannot be met here, if it cannot.
    fn unmet(&self, requirement: Requirement) -> Option<String>;
}

/// Runs the planned runs with up to `config.jobs` in parallel; outcomes
/// come back in the order of the plan.
pub fn run_all(
    selected: &[RecipeRun],
    config: &RunConfig,
    factory: &dyn EnvironmentFactory,
    supervisor: &Arc<Supervisor>,
    reporter: &dyn Reporter,
) -> Vec<Outcome> {
    let next = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<Option<Outcome>>> = Mutex::new(vec![None; selected.len()]);
    let runner = Runner {
        config,
        factory,
        supervisor,
    };
    std::thread::scope(|scope| {
        for _ in 0..config.jobs.clamp(1, selected.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(run) = selected.get(i) else {
                    break;
                };
                reporter.started(run.recipe);
                let outcome = runner.run(run);
                reporter.finished(&outcome);
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

struct Runner<'a> {
    config: &'a RunConfig,
    factory: &'a dyn EnvironmentFactory,
    supervisor: &'a Arc<Supervisor>,
}

impl Runner<'_> {
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
            Status::Error(format!("{reason} (and --require-all is set)"))
        } else {
            Status::Skipped(reason)
        })
    }

    fn run(&self, run: &RecipeRun) -> Outcome {
        let start = Instant::now();
        let (recipe, chain, fixture) = (run.recipe, &run.chain, &run.fixture);
        let mut outcome = Outcome {
            id: recipe.id.clone(),
            lang: recipe.lang.clone(),
            page: recipe.page.clone(),
            location: recipe.location.clone(),
            fixture: fixture.clone(),
            status: Status::Passed,
            duration: Duration::ZERO,
            failure: None,
            steps_run: 0,
            kept: None,
            log: Vec::new(),
            blessed: Vec::new(),
        };
        if let Some(status) = self.unmet(&run.requires) {
            outcome.status = status;
            return outcome;
        }
        if self.supervisor.interrupted() {
            outcome.status = Status::Interrupted;
            return outcome;
        }
        let env = match self.factory.create(recipe, fixture, chain) {
            Ok(env) => env,
            Err(message) => {
                outcome.status = Status::Error(message);
                outcome.duration = start.elapsed();
                return outcome;
            }
        };
        'recipes: for r in chain {
            for (i, step) in r.steps.iter().enumerate() {
                if step.kind == StepKind::Expect {
                    continue;
                }
                outcome.steps_run += 1;
                let log = self.config.verbose.then_some(&mut outcome.log);
                match self.run_step(env.as_ref(), r, step, r.expect_for(i), log) {
                    Ok(None) => {}
                    Ok(Some(blessing)) => {
                        let target = &r.steps[i + blessing.offset];
                        outcome.blessed.push(Blessed {
                            recipe: r.id.clone(),
                            step: i + blessing.offset,
                            location: target.location.clone(),
                            body: blessing.body,
                        });
                    }
                    Err(e) => {
                        outcome.status = e.status;
                        let mut failure = *e.failure;
                        // A limit the sandbox ran into explains the failure
                        // better than its symptoms (EAGAIN, a killed step).
                        for why in env.diagnose() {
                            failure.message = format!("{}; {why}", failure.message);
                        }
                        outcome.failure = Some(failure);
                        break 'recipes;
                    }
                }
            }
        }
        match env.close() {
            Ok(kept) => outcome.kept = kept,
            Err(message) if outcome.status == Status::Passed => {
                outcome.status = Status::Error(format!("cannot clean up: {message}"))
            }
            Err(_) => {}
        }
        outcome.duration = start.elapsed();
        outcome
    }

    fn run_step(
        &self,
        env: &dyn Environment,
        recipe: &Recipe,
        step: &Step,
        expect: Option<&Step>,
        log: Option<&mut Vec<(Location, String)>>,
    ) -> Result<Option<Blessing>, StepError> {
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
        } = match step::prepare(step, env, &rootfs, &self.config.cache_dir, timeout) {
            Ok(Some(prepared)) => prepared,
            Ok(None) => return Ok(None),
            Err(e) => return Err(StepError::failed(step, &e.command, e.message)),
        };
        let fail = |message: String| StepError::failed(step, &text, message);
        let mut command = env.command(&program).map_err(fail)?;
        step::set_env(&mut command, env, &rootfs, recipe, &self.config.lib_dir);
        // A session bounds each of its waits itself.
        let bound = match &step.session {
            Some(session) => session::overall_timeout(session, timeout),
            None => timeout,
        };
        let finished = self
            .supervisor
            .run(command, stdin, bound)
            .map_err(|e| fail(format!("cannot start {:?}: {e}", program.program)))?;
        let output = String::from_utf8_lossy(&finished.output).into_owned();
        if let Some(log) = log {
            log.push((step.location.clone(), verdict::shown(step, &output)));
        }
        let ran = Ran {
            step,
            expect,
            command: &text,
            exit: finished.exit,
            output: &output,
            timeout,
        };
        verdict::judge(&ran, self.config.bless)
    }
}
