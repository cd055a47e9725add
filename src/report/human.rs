//! The human sink: results on stdout as recipes finish (a coloured diff on
//! a terminal), and what the stages say (installs, fixture builds, notices)
//! on stderr. On a terminal one `indicatif::MultiProgress` holds the live
//! line of the run and a spinner per fixture being built.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use similar::{ChangeTag, TextDiff};

use super::event::{Event, EventSink, Summary};
use crate::duration;
use crate::matcher;
use crate::outcome::{Outcome, Status, Tally};

pub struct Style {
    color: bool,
}

impl Style {
    #[cfg(test)]
    pub fn plain() -> Style {
        Style { color: false }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// Prints a run for a person.
pub struct Human {
    style: Style,
    /// Only failures and the summary.
    quiet: bool,
    /// Whether stdout is a terminal: then the live view.
    terminal: bool,
    bars: MultiProgress,
    /// The run's live line, from its start (several recipes, a terminal).
    live: Mutex<Option<Live>>,
    /// A spinner per fixture being built.
    builds: Mutex<BTreeMap<String, ProgressBar>>,
    out: Mutex<std::io::Stdout>,
}

/// The live view of a run on a terminal: finished recipes scroll above a
/// progress line that names the recipes still running.
struct Live {
    bar: ProgressBar,
    running: Vec<String>,
}

impl Live {
    fn new(bars: &MultiProgress, total: usize) -> Live {
        let bar = bars.add(ProgressBar::new(total as u64));
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed}] {pos}/{len} done, {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Live {
            bar,
            running: Vec::new(),
        }
    }

    fn update(&mut self, change: impl FnOnce(&mut Vec<String>)) {
        change(&mut self.running);
        let remaining = self.bar.length().unwrap_or(0) - self.bar.position();
        self.bar.set_message(format!(
            "{remaining} to go; running: {}",
            if self.running.is_empty() {
                "-".to_string()
            } else {
                self.running.join(", ")
            }
        ));
    }
}

impl Human {
    /// On a terminal, colours (unless `NO_COLOR`) and a live view;
    /// elsewhere (a pipe, a file, CI logs) plain lines.
    pub fn new(quiet: bool) -> Human {
        let terminal = std::io::stdout().is_terminal();
        Human {
            style: Style {
                color: terminal && std::env::var_os("NO_COLOR").is_none(),
            },
            quiet,
            terminal,
            bars: MultiProgress::with_draw_target(ProgressDrawTarget::stdout_with_hz(10)),
            live: Mutex::new(None),
            builds: Mutex::new(BTreeMap::new()),
            out: Mutex::new(std::io::stdout()),
        }
    }

    fn print(&self, text: &str) {
        self.bars.suspend(|| {
            let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        });
    }

    fn say(&self, text: &str) {
        self.bars.suspend(|| eprintln!("{text}"));
    }

    fn live(&self, change: impl FnOnce(&mut Live)) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(live) = live.as_mut() {
            change(live);
        }
    }

    fn build_started(&self, fixture: &str, how: &str) {
        self.say(&format!(
            "recipes: building fixture `{fixture}` ({how}), once per definition"
        ));
        let bar = self.bars.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed:>4} {prefix} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(fixture.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        let mut builds = self.builds.lock().unwrap_or_else(|e| e.into_inner());
        builds.insert(fixture.to_string(), bar);
    }

    fn build_finished(&self, fixture: &str, took: Duration, size_mb: Option<u64>) {
        let bar = self
            .builds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(fixture);
        if let Some(bar) = bar {
            bar.finish_and_clear();
            self.bars.remove(&bar);
        }
        // A failed build is said by whoever asked for it.
        if let Some(size) = size_mb {
            self.say(&format!(
                "recipes: fixture `{fixture}` built in {took:.0?} ({size} MB)"
            ));
        }
    }

    fn summary(&self, summary: &Summary) {
        self.live(|live| live.bar.finish_and_clear());
        self.print(&summary_text(summary, &self.style));
    }
}

impl EventSink for Human {
    fn event(&self, event: &Event) {
        match event {
            Event::RunStarted { runs, .. } => {
                if self.terminal && !self.quiet && *runs > 1 {
                    *self.live.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(Live::new(&self.bars, *runs));
                }
            }
            Event::Notice { message } => self.say(message),
            Event::PackagesInstalling { packages, commands } => self.say(&format!(
                "recipes: installing {} with apt-get (for {}; --no-install turns this off)",
                packages.join(" "),
                commands.join(", ")
            )),
            Event::FixtureBuildStarted { fixture, how } => self.build_started(fixture, how),
            Event::FixtureBuildProgress { fixture, line } => {
                let builds = self.builds.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(bar) = builds.get(fixture) {
                    bar.set_message(line.clone());
                }
            }
            Event::FixtureBuildFinished {
                fixture,
                duration_ms,
                size_mb,
                ..
            } => self.build_finished(fixture, Duration::from_millis(*duration_ms), *size_mb),
            Event::RecipeStarted(started) => {
                self.live(|live| live.update(|running| running.push(started.id.clone())))
            }
            Event::RecipeFinished(outcome) => {
                self.live(|live| {
                    live.bar.inc(1);
                    live.update(|running| running.retain(|id| *id != outcome.id));
                });
                if !self.quiet || failed(outcome) {
                    self.print(&human(outcome, &self.style));
                }
            }
            Event::RunFinished(summary) => self.summary(summary),
            Event::Blessed { path } => self.print(&format!("blessed {path}\n")),
            Event::NotBlessed {
                id,
                location,
                message,
                ..
            } => self.say(&format!(
                "not blessed: {location}: {message} (recipe `{id}`; only expected output is blessed, not exit codes or files)"
            )),
            // Said under the result, by the outcome's note.
            Event::CheckpointKept { .. }
            | Event::CheckpointRestored { .. }
            | Event::CheckpointReplayed { .. } => {}
            // A failure is said by the error it returns.
            Event::PackagesInstalled { .. } | Event::PackagesFailed { .. } => {}
        }
    }
}

fn failed(o: &Outcome) -> bool {
    matches!(
        o.status,
        Status::Failed | Status::TimedOut | Status::Error(_) | Status::Interrupted
    )
}

/// The closing lines: the tally, then each flaky recipe.
fn summary_text(summary: &Summary, style: &Style) -> String {
    let Tally {
        total,
        passed,
        failed,
        skipped,
        errors,
        interrupted,
    } = summary.tally;
    let mut parts = vec![format!("{passed} passed"), format!("{failed} failed")];
    if skipped > 0 {
        parts.push(format!("{skipped} skipped"));
    }
    if errors > 0 {
        parts.push(format!("{errors} errors"));
    }
    if interrupted > 0 {
        parts.push(format!("{interrupted} interrupted"));
    }
    let noun = if total == 1 { "recipe" } else { "recipes" };
    let mut text = format!("\n{total} {noun}: {}\n", parts.join(", "));
    for f in summary.flaky.iter().flatten() {
        text.push_str(&format!(
            "{} {} (fixture {}): passed {} of {} attempts\n",
            style.paint("33", "flaky"),
            f.id,
            f.fixture,
            f.passed,
            f.attempts
        ));
    }
    text
}

/// One finished recipe as the report shows it.
pub fn human(o: &Outcome, style: &Style) -> String {
    let time = duration::display(o.duration);
    let mut text = match &o.status {
        Status::Passed => format!("{} {} ({time})\n", style.paint("32", "PASS"), o.id),
        Status::Failed => format!("{} {} ({time})\n", style.paint("31;1", "FAIL"), o.id),
        Status::TimedOut => format!("{} {} ({time})\n", style.paint("31;1", "TIME"), o.id),
        Status::Interrupted => format!("{} {}\n", style.paint("33", "INT "), o.id),
        Status::Skipped(reason) => format!("{} {}: {reason}\n", style.paint("33", "SKIP"), o.id),
        Status::Error(reason) => {
            format!("{} {}: {reason}\n", style.paint("31;1", "ERR "), o.id)
        }
    };
    if let Some(checkpoint) = &o.checkpoint {
        text.push_str(&format!(
            "  {}\n",
            style.paint("2", &checkpoint.to_string())
        ));
    }
    if let Some(booted) = &o.booted {
        text.push_str(&format!("  {}\n", style.paint("2", booted)));
    }
    for (location, took, output) in &o.log {
        let took = duration::display(*took);
        text.push_str(&format!(
            "  {}\n",
            style.paint("2", &format!("── {location} ({took})"))
        ));
        for line in output.lines() {
            text.push_str(&format!("    {line}\n"));
        }
    }
    if let Some(f) = &o.failure {
        text.push_str(&format!(
            "  {}: {} step of recipe `{}` (fixture {})\n",
            f.step,
            f.kind.as_str(),
            o.id,
            o.fixture
        ));
        for (i, line) in f.command.lines().enumerate() {
            if i == 8 {
                text.push_str("    ...\n");
                break;
            }
            text.push_str(&format!("    {line}\n"));
        }
        for line in f.message.lines() {
            text.push_str(&format!("  {line}\n"));
        }
        match (&f.expected, &f.actual) {
            (Some(expected), Some(actual)) => {
                text.push_str(&format!(
                    "  {} {}\n",
                    style.paint("31", "-expected"),
                    style.paint("32", "+actual")
                ));
                text.push_str(&diff(expected, actual, &f.captures, style));
                for (name, value) in &f.captures {
                    text.push_str(&format!("  (capture `{name}` = `{value}`)\n"));
                }
            }
            _ => {
                let shown = f.actual.as_deref().unwrap_or(&f.output);
                if !shown.is_empty() {
                    text.push_str("  output:\n");
                    for line in tail(shown, 40) {
                        text.push_str(&format!("    {line}\n"));
                    }
                }
            }
        }
    }
    if let Some(kept) = &o.kept {
        text.push_str(&format!(
            "  fixture kept at {} (upper/ holds what the recipe changed over its base)\n",
            kept.display()
        ));
    }
    text
}

fn tail(text: &str, n: usize) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// A unified view of expected versus actual lines, where actual lines that
/// a pattern accepts are shown as that pattern.
pub fn diff(
    expected: &[String],
    actual: &str,
    captures: &matcher::Captures,
    style: &Style,
) -> String {
    let actual_lines: Vec<&str> = actual.lines().collect();
    let shown: Vec<&str> = match matcher::compile(expected, captures) {
        Ok(patterns) => matcher::normalise(expected, &patterns, &actual_lines)
            .into_iter()
            .map(matcher::Shown::text)
            .collect(),
        Err(_) => actual_lines.clone(),
    };
    let old: Vec<&str> = expected.iter().map(String::as_str).collect();
    let diff = TextDiff::from_slices(&old, &shown);
    let mut text = String::new();
    for change in diff.iter_all_changes() {
        let line = change.value();
        match change.tag() {
            ChangeTag::Equal => text.push_str(&format!("   {line}\n")),
            ChangeTag::Delete => {
                text.push_str(&format!("  {}\n", style.paint("31", &format!("-{line}"))))
            }
            ChangeTag::Insert => {
                text.push_str(&format!("  {}\n", style.paint("32", &format!("+{line}"))))
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{CheckpointNote, Flaky};
    use crate::report::fake;

    #[test]
    fn a_failure_shows_its_step_command_and_diff() {
        let mut o = fake::failed("r");
        o.checkpoint = Some(CheckpointNote::Reported("kept a checkpoint of `a`".into()));
        assert_eq!(
            human(&o, &Style::plain()),
            "FAIL r (1s 500ms)\n  \
             kept a checkpoint of `a`\n  \
             book/fr/src/p.md:21: console step of recipe `r` (fixture empty)\n    \
             $ echo réel\n  \
             the output differs\n  \
             -expected +actual\n  \
             -attendu\n  \
             +réel\n"
        );
        let skipped = fake::outcome("s", Status::Skipped("requires lxc: no".into()));
        assert_eq!(
            human(&skipped, &Style::plain()),
            "SKIP s: requires lxc: no\n"
        );
    }

    #[test]
    fn the_summary_counts_and_names_the_flaky() {
        let summary = Summary {
            tally: Tally {
                total: 3,
                passed: 2,
                failed: 1,
                skipped: 0,
                errors: 0,
                interrupted: 0,
            },
            flaky: Some(vec![Flaky {
                id: "flip".into(),
                fixture: "empty".into(),
                passed: 1,
                attempts: 2,
            }]),
        };
        assert_eq!(
            summary_text(&summary, &Style::plain()),
            "\n3 recipes: 2 passed, 1 failed\nflaky flip (fixture empty): passed 1 of 2 attempts\n"
        );
        let one = Summary::of(&[fake::outcome("a", Status::Passed)]);
        assert_eq!(
            summary_text(&one, &Style::plain()),
            "\n1 recipe: 1 passed, 0 failed\n"
        );
    }
}
