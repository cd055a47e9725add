//! Outcomes → reports: human text (with a coloured diff on a terminal), one
//! JSON event per line, and JUnit XML. Reads only the model.

mod junit;

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use similar::{ChangeTag, TextDiff};

use crate::duration;
use crate::matcher;
use crate::model::Recipe;
use crate::outcome::{Outcome, Reporter, Status, Tally};
pub use junit::write_junit;

/// Output formats of `run` and `test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
}

pub struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// Prints progress and outcomes to stdout as recipes finish.
pub struct Console {
    format: Format,
    style: Style,
    /// Only failures and the summary.
    quiet: bool,
    out: Mutex<std::io::Stdout>,
    /// On a terminal: a bottom line saying what runs and how many remain.
    live: Option<Live>,
}

/// The live view of a run on a terminal: finished recipes scroll above a
/// progress line that names the recipes still running.
struct Live {
    bar: ProgressBar,
    running: Mutex<Vec<String>>,
}

impl Live {
    fn new(total: usize) -> Live {
        let bar = ProgressBar::with_draw_target(
            Some(total as u64),
            ProgressDrawTarget::stdout_with_hz(10),
        );
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed}] {pos}/{len} done, {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        Live {
            bar,
            running: Mutex::new(Vec::new()),
        }
    }

    fn update(&self, change: impl FnOnce(&mut Vec<String>)) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut running);
        let remaining = self.bar.length().unwrap_or(0) - self.bar.position();
        self.bar.set_message(format!(
            "{remaining} to go; running: {}",
            if running.is_empty() {
                "-".to_string()
            } else {
                running.join(", ")
            }
        ));
    }
}

impl Console {
    /// A console for a run of `total` recipes. On a terminal, human output
    /// gets a live view; elsewhere (a pipe, a file, CI logs) plain lines.
    pub fn new(format: Format, quiet: bool, total: usize) -> Self {
        let terminal = std::io::stdout().is_terminal();
        let color = terminal && std::env::var_os("NO_COLOR").is_none();
        let live =
            (terminal && format == Format::Human && !quiet && total > 1).then(|| Live::new(total));
        Console {
            format,
            style: Style { color },
            quiet,
            out: Mutex::new(std::io::stdout()),
            live,
        }
    }

    fn emit(&self, text: &str) {
        let write = || {
            let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        };
        match &self.live {
            Some(live) => live.bar.suspend(write),
            None => write(),
        }
    }

    /// The closing line (human) or event (JSON).
    pub fn summary(&self, outcomes: &[Outcome]) {
        if let Some(live) = &self.live {
            live.bar.finish_and_clear();
        }
        let Tally {
            total,
            passed,
            failed,
            skipped,
            errors,
            interrupted,
        } = Tally::of(outcomes);
        let flaky = crate::outcome::flaky(outcomes);
        match self.format {
            Format::Json => {
                let mut event = serde_json::json!({
                    "event": "summary",
                    "total": total,
                    "passed": passed,
                    "failed": failed,
                    "skipped": skipped,
                    "errors": errors,
                    "interrupted": interrupted,
                });
                if outcomes.iter().any(|o| o.attempt > 1) {
                    event["flaky"] = serde_json::to_value(&flaky).unwrap_or_default();
                }
                self.emit(&format!("{event}\n"))
            }
            Format::Human => {
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
                let noun = if outcomes.len() == 1 {
                    "recipe"
                } else {
                    "recipes"
                };
                let mut text = format!("\n{} {noun}: {}\n", outcomes.len(), parts.join(", "));
                for f in &flaky {
                    text.push_str(&format!(
                        "{} {} (fixture {}): passed {} of {} attempts\n",
                        self.style.paint("33", "flaky"),
                        f.id,
                        f.fixture,
                        f.passed,
                        f.attempts
                    ));
                }
                self.emit(&text);
            }
        }
    }
}

impl Reporter for Console {
    fn started(&self, recipe: &Recipe, fixture: &str, host: Option<&str>) {
        if let Some(live) = &self.live {
            live.update(|running| running.push(recipe.id.clone()));
        }
        if self.format == Format::Json {
            let mut event = serde_json::json!({
                "event": "started",
                "id": recipe.id,
                "lang": recipe.lang,
                "page": recipe.page,
                "line": recipe.location.line,
                "fixture": fixture,
            });
            if let Some(host) = host {
                event["host"] = host.into();
            }
            self.emit(&format!("{event}\n"));
        }
    }

    fn finished(&self, outcome: &Outcome) {
        if let Some(live) = &self.live {
            live.bar.inc(1);
            live.update(|running| running.retain(|id| *id != outcome.id));
        }
        let failure = matches!(
            outcome.status,
            Status::Failed | Status::TimedOut | Status::Error(_) | Status::Interrupted
        );
        match self.format {
            Format::Json => self.emit(&format!("{}\n", json_event(outcome))),
            Format::Human if self.quiet && !failure => {}
            Format::Human => self.emit(&human(outcome, &self.style)),
        }
    }
}

/// The `finished` event of one recipe.
pub fn json_event(o: &Outcome) -> serde_json::Value {
    let mut event = serde_json::json!({
        "event": "finished",
        "id": o.id,
        "lang": o.lang,
        "page": o.page,
        "line": o.location.line,
        "fixture": o.fixture,
        "status": o.status.as_str(),
        "duration_ms": o.duration.as_millis() as u64,
        "steps_run": o.steps_run,
        "attempt": o.attempt,
    });
    if let Some(reason) = o.status.reason() {
        event["reason"] = reason.into();
    }
    if let Some(f) = &o.failure {
        event["failure"] = serde_json::json!({
            "path": f.step.path.display().to_string(),
            "line": f.step.line,
            "kind": f.kind.as_str(),
            "command": f.command,
            "message": f.message,
            "expected": f.expected.as_ref().map(|e| e.join("\n")),
            "actual": f.actual,
            "output": f.output,
        });
    }
    if let Some(kept) = &o.kept {
        event["kept"] = kept.display().to_string().into();
    }
    if let Some(checkpoint) = &o.checkpoint {
        event["checkpoint"] = checkpoint.to_string().into();
    }
    if let Some(booted) = &o.booted {
        event["booted"] = booted.clone().into();
    }
    event["provenance"] = serde_json::to_value(&o.provenance).unwrap_or_default();
    event
}

fn human(o: &Outcome, style: &Style) -> String {
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
