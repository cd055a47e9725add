//! Orchestration: runs selected recipes (their `needs` first, in the same
//! environment), step by step, under process supervision, in parallel when
//! asked, and hands each [`Outcome`] to a reporter.

pub mod env;
pub mod process;
pub mod rust;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::matcher;
use crate::model::{ExpectedExit, Location, Recipe, Requirement, Step, StepKind, Where, STEP_PATH};
use crate::outcome::{Blessed, Failure, Outcome, Reporter, Status};
use crate::plan::RecipeRun;
pub use env::{Direct, Environment, StepProgram};
use process::{Exit, Supervisor};

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

/// A step that did not pass.
struct StepError {
    status: Status,
    failure: Box<Failure>,
}

impl Runner<'_> {
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
        let unmet: Vec<String> = run
            .requires
            .iter()
            .filter_map(|r| {
                self.factory
                    .unmet(*r)
                    .map(|why| format!("requires {}: {why}", r.as_str()))
            })
            .collect();
        if !unmet.is_empty() {
            let reason = unmet.join("; ");
            outcome.status = if self.config.require_all {
                Status::Error(format!("{reason} (and --require-all is set)"))
            } else {
                Status::Skipped(reason)
            };
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
                        outcome.failure = Some(*e.failure);
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
        let fail = |command: String, message: String| StepError {
            status: Status::Failed,
            failure: Box::new(Failure {
                step: step.location.clone(),
                kind: step.kind,
                command,
                message,
                expected: None,
                actual: None,
                output: String::new(),
            }),
        };
        let expand = |path: &str| match path.strip_prefix("$ROOTFS") {
            Some(rest) => format!("{}{rest}", rootfs.trim_end_matches('/')),
            None => path.to_string(),
        };
        let os = |s: &str| OsString::from(s);
        let (program, stdin, command_text) = match step.kind {
            StepKind::Script => {
                let mut args = vec![os("-eu")];
                if step.syntax == "bash" {
                    args.extend([os("-o"), os("pipefail")]);
                }
                args.extend([os("-c"), os(&step.body)]);
                (program(&step.syntax, args, step), None, step.body.clone())
            }
            StepKind::Console => {
                let script = console_script(step);
                let args = vec![os("--noprofile"), os("--norc"), os("-c"), os(&script)];
                (program("bash", args, step), None, String::new())
            }
            StepKind::Rust => {
                let binary = rust::compile(&self.config.cache_dir, &step.body)
                    .map_err(|e| fail("rust program".into(), e))?;
                (
                    program(&binary.display().to_string(), vec![], step),
                    None,
                    "rust program".into(),
                )
            }
            StepKind::File => {
                let path = expand(step.file.as_deref().unwrap_or_default());
                let mut script =
                    String::from("mkdir -p -- \"$(dirname -- \"$1\")\" && cat > \"$1\"");
                if let Some(mode) = step.mode {
                    script.push_str(&format!(" && chmod {mode:o} -- \"$1\""));
                }
                let args = vec![os("-c"), os(&script), os("sh"), os(&path)];
                (
                    program("sh", args, step),
                    Some(step.body.clone().into_bytes()),
                    format!("write {path}"),
                )
            }
            StepKind::Check => {
                let path = expand(step.file.as_deref().unwrap_or_default());
                let args = vec![os("--"), os(&path)];
                (program("cat", args, step), None, format!("check {path}"))
            }
            StepKind::Expect => return Ok(None),
        };
        let mut command = env
            .command(&program)
            .map_err(|e| fail(command_text.clone(), e))?;
        command
            .env_clear()
            .env("PATH", STEP_PATH)
            .env(
                "HOME",
                std::env::var_os("HOME").unwrap_or_else(|| "/root".into()),
            )
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "C.UTF-8")
            .env("TERM", "dumb")
            .env("ROOTFS", &rootfs)
            .env("RECIPE", &recipe.id)
            .env("RECIPES_LIB", &self.config.lib_dir);
        let timeout = step.timeout.unwrap_or(self.config.default_timeout);
        let finished = self.supervisor.run(command, stdin, timeout).map_err(|e| {
            fail(
                command_text.clone(),
                format!("cannot start {:?}: {e}", program.program),
            )
        })?;
        let output = String::from_utf8_lossy(&finished.output).into_owned();
        if let Some(log) = log {
            let shown = match step.kind {
                StepKind::Console => render_transcript(step, &output),
                _ => output.clone(),
            };
            log.push((step.location.clone(), shown));
        }
        let error = |message: String, expected: Option<Vec<String>>, actual: Option<String>| {
            let mut e = fail(command_text.clone(), message);
            e.failure.output = output.clone();
            e.failure.expected = expected;
            e.failure.actual = actual;
            e
        };
        match finished.exit {
            Exit::TimedOut => {
                let mut e = error(
                    format!("timed out after {}", crate::duration::display(timeout)),
                    None,
                    None,
                );
                e.status = Status::TimedOut;
                return Err(e);
            }
            Exit::Interrupted => {
                let mut e = error("interrupted".into(), None, None);
                e.status = Status::Interrupted;
                return Err(e);
            }
            _ => {}
        }
        let bless = self.config.bless;
        let blessed = |offset: usize, body: String| Ok(Some(Blessing { offset, body }));
        match step.kind {
            StepKind::Console => match check_transcript(step, &output, finished.exit) {
                Ok(()) => Ok(None),
                Err(_) if bless && blessed_transcript(step, &output).is_some() => {
                    blessed(0, blessed_transcript(step, &output).unwrap_or_default())
                }
                Err((entry, message, expected, actual)) => {
                    let mut e = error(message, expected, actual);
                    e.failure.step = Location {
                        path: step.location.path.clone(),
                        line: entry.0,
                    };
                    e.failure.command = format!("$ {}", entry.1);
                    Err(e)
                }
            },
            StepKind::File | StepKind::Check if finished.exit != Exit::Code(0) => {
                Err(error(format!("failed with {}", finished.exit), None, None))
            }
            StepKind::Check => {
                let expected: Vec<String> = step.body.lines().map(str::to_string).collect();
                match compare(&expected, &output) {
                    Ok(()) => Ok(None),
                    Err(_) if bless => blessed(0, lines_body(&blessed_lines(&expected, &output))),
                    Err(m) => Err(error(m, Some(expected), Some(output.clone()))),
                }
            }
            StepKind::File => Ok(None),
            _ => {
                let ok = match step.exit {
                    ExpectedExit::Any => !matches!(finished.exit, Exit::Signal(_)),
                    ExpectedExit::Code(c) => finished.exit == Exit::Code(c),
                };
                if !ok {
                    let want = match step.exit {
                        ExpectedExit::Any => "any exit code".to_string(),
                        ExpectedExit::Code(c) => format!("exit code {c}"),
                    };
                    return Err(error(
                        format!("ended with {}, expected {want}", finished.exit),
                        None,
                        None,
                    ));
                }
                let Some(expect) = expect else {
                    return Ok(None);
                };
                let expected: Vec<String> = expect.body.lines().map(str::to_string).collect();
                match compare(&expected, &output) {
                    Ok(()) => Ok(None),
                    Err(_) if bless => blessed(1, lines_body(&blessed_lines(&expected, &output))),
                    Err(m) => {
                        let mut e = error(m, Some(expected), Some(output.clone()));
                        e.failure.step = expect.location.clone();
                        Err(e)
                    }
                }
            }
        }
    }
}

/// A new body for a step (at `offset` after the step that ran: 1 for its
/// `expect` block), produced by `--bless`.
struct Blessing {
    offset: usize,
    body: String,
}

fn lines_body(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn program(name: &str, args: Vec<OsString>, step: &Step) -> StepProgram {
    StepProgram {
        program: name.into(),
        args,
        where_: step.where_,
    }
}

/// Compares output with expected lines; `Err` carries the reason.
fn compare(expected: &[String], actual: &str) -> Result<(), String> {
    let patterns = matcher::compile(expected)?;
    let lines: Vec<&str> = actual.lines().collect();
    if matcher::matches(&patterns, &lines) {
        Ok(())
    } else {
        Err("output differs from the expected output".into())
    }
}

/// Marker printed after each transcript command, with its index and status.
const MARK: &str = "\u{1}recipes-transcript-mark";

/// One bash script that runs the transcript's commands in one shell (as a
/// reader types them in one terminal) and prints a marker after each.
fn console_script(step: &Step) -> String {
    let mut script = String::from("exec 2>&1\n");
    for (i, entry) in step.transcript.iter().enumerate() {
        script.push_str(&entry.command);
        script.push('\n');
        script.push_str(&format!("printf '\\n{MARK} {i} %d\\n' \"$?\"\n"));
    }
    script
}

/// Each command's output and exit code, cut out of the output of
/// [`console_script`]; `None` from the first command that did not finish.
fn split_transcript(step: &Step, output: &str) -> Vec<Option<(String, i32)>> {
    let mut rest = output;
    let mut parts = Vec::new();
    for i in 0..step.transcript.len() {
        let marker = format!("\n{MARK} {i} ");
        let Some(pos) = rest.find(&marker) else {
            parts.resize(step.transcript.len(), None);
            break;
        };
        let after = &rest[pos + marker.len()..];
        let (code, tail) = after.split_once('\n').unwrap_or((after, ""));
        parts.push(Some((
            rest[..pos].to_string(),
            code.trim().parse().unwrap_or(-1),
        )));
        rest = tail;
    }
    parts
}

/// A transcript's output as a reader would see it in a terminal.
fn render_transcript(step: &Step, output: &str) -> String {
    let mut text = String::new();
    for (entry, part) in step.transcript.iter().zip(split_transcript(step, output)) {
        text.push_str(&format!("$ {}\n", entry.command));
        let Some((segment, code)) = part else {
            break;
        };
        text.push_str(&segment);
        if !segment.is_empty() && !segment.ends_with('\n') {
            text.push('\n');
        }
        if code != 0 {
            text.push_str(&format!("[{code}]\n"));
        }
    }
    text
}

type TranscriptError = ((usize, String), String, Option<Vec<String>>, Option<String>);

/// Checks each command of a transcript against its output.
fn check_transcript(step: &Step, output: &str, exit: Exit) -> Result<(), TranscriptError> {
    for (entry, part) in step.transcript.iter().zip(split_transcript(step, output)) {
        let at = |m: String, e: Option<Vec<String>>, a: Option<String>| {
            ((entry.line, entry.command.clone()), m, e, a)
        };
        let Some((actual, code)) = part else {
            return Err(at(
                format!("the shell stopped before this command finished ({exit}); did a command exit the shell?"),
                Some(entry.expected.clone()),
                Some(String::new()),
            ));
        };
        if let Err(m) = compare(&entry.expected, &actual) {
            return Err(at(m, Some(entry.expected.clone()), Some(actual)));
        }
        if code != entry.exit {
            return Err(at(
                format!("exited with code {code}, expected {}", entry.exit),
                None,
                Some(actual),
            ));
        }
    }
    Ok(())
}

/// Expected lines rewritten to match `actual`, keeping every expected line
/// whose pattern still matches.
fn blessed_lines(expected: &[String], actual: &str) -> Vec<String> {
    let lines: Vec<&str> = actual.lines().collect();
    match matcher::compile(expected) {
        Ok(patterns) => matcher::normalise(expected, &patterns, &lines)
            .into_iter()
            .map(str::to_string)
            .collect(),
        Err(_) => lines.into_iter().map(str::to_string).collect(),
    }
}

/// A transcript's body rewritten to what its commands printed, or `None`
/// when the shell stopped early (nothing safe to write).
fn blessed_transcript(step: &Step, output: &str) -> Option<String> {
    let mut body = String::new();
    for (entry, part) in step.transcript.iter().zip(split_transcript(step, output)) {
        let (actual, code) = part?;
        body.push_str(&format!("$ {}\n", entry.command));
        for line in blessed_lines(&entry.expected, &actual) {
            body.push_str(&line);
            body.push('\n');
        }
        if code != 0 {
            body.push_str(&format!("[{code}]\n"));
        }
    }
    Some(body)
}
