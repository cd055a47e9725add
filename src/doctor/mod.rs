//! `recipes doctor`, in the spirit of `lxc-checkconfig`: checks everything
//! the runner needs of the host (root, user namespaces and the sandboxes'
//! ids, idmapped mounts in the cache, overlayfs, cgroup controllers,
//! seccomp, disk space, the kernel features the book uses, the Debian
//! packages) and says how to fix what is missing. The checks read a
//! [`HostDescription`], the live host's or one recorded in a JSON file, so
//! hosts that cannot be reproduced here are tested too.
//!
//! For `run` and `test`: [`preflight`] turns what every sandbox needs into
//! one clear error instead of one sandbox error per recipe,
//! [`load_modules`] loads the modules the host has but has not loaded (a
//! sandbox cannot), and [`kernel_lacks`] answers `requires=dummy`.

pub mod checks;
pub mod host;
pub mod modules;

use std::fmt;
use std::path::PathBuf;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

pub use host::HostDescription;
pub use modules::{kernel_lacks, load_modules, ModprobeError, RUNNER_MODULES};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Ok,
    /// Works, with a limit or a risk worth knowing; does not fail.
    Warn,
    /// The runner (or part of the book) cannot work until it is fixed.
    Missing,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Warn => "warn",
            State::Missing => "missing",
        }
    }
}

/// One check: its name, how it came out, a detail, and the fix when not ok.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub check: String,
    pub state: State,
    pub detail: String,
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(&self) -> bool {
        self.state == State::Ok
    }
}

/// `{check, ok, state, detail, fix}`: `ok` is true for a passing check
/// only (`fix` is then null); `state` tells a warning, which does not
/// fail, from what is missing.
impl Serialize for Check {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Check", 5)?;
        s.serialize_field("check", &self.check)?;
        s.serialize_field("ok", &self.ok())?;
        s.serialize_field("state", self.state.as_str())?;
        s.serialize_field("detail", &self.detail)?;
        s.serialize_field("fix", &self.fix)?;
        s.end()
    }
}

/// `ok       root   running as root`, with `; fix: …` when not ok.
impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = f.width().unwrap_or(0);
        write!(
            f,
            "{:<7}  {:<width$}  {}",
            self.state.as_str(),
            self.check,
            self.detail
        )?;
        if let Some(fix) = &self.fix {
            write!(f, "; fix: {fix}")?;
        }
        Ok(())
    }
}

/// A line to show before a run (on stderr): `recipes: …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice(pub String);

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "recipes: {}", self.0)
    }
}

/// Why the doctor, or a run it guards, cannot go on (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    /// What every sandbox needs and the host lacks.
    #[error("{}", unmet(.0))]
    Unmet(Vec<Check>),
    #[error("{}: {message}", path.display())]
    Description { path: PathBuf, message: String },
    #[error("{}", modprobe_failed(loaded, failed))]
    Modprobe {
        /// Modules loaded before (or beside) the failures.
        loaded: Vec<String>,
        /// Each module that failed, with modprobe's own words.
        failed: Vec<(String, ModprobeError)>,
    },
}

fn unmet(checks: &[Check]) -> String {
    let mut text = String::from(
        "this host cannot run recipes in sandboxes (`recipes doctor` checks everything):",
    );
    for check in checks {
        text.push_str(&format!("\n  {}: {}", check.check, check.detail));
        if let Some(fix) = &check.fix {
            text.push_str(&format!("\n    fix: {fix}"));
        }
    }
    text
}

fn modprobe_failed(loaded: &[String], failed: &[(String, ModprobeError)]) -> String {
    let mut text = failed
        .iter()
        .map(|(module, said)| format!("cannot load the kernel module {module}: {said}"))
        .collect::<Vec<_>>()
        .join("; ");
    if !loaded.is_empty() {
        text.push_str(&format!(" (loaded: {})", loaded.join(", ")));
    }
    text.push_str("; a sandbox cannot load modules: load them as root (modprobe), or recipes that use them fail");
    text
}

/// Runs the checks every sandbox needs on `host` (usually
/// [`HostDescription::read_live`]). What is missing is one error naming
/// each unmet need and its fix; warnings, and a cache short of space,
/// come back as notices to show before the run.
pub fn preflight(host: &HostDescription) -> Result<Vec<Notice>, DoctorError> {
    let mut checks = checks::sandbox(host);
    let (unmet, others): (Vec<Check>, Vec<Check>) =
        checks.drain(..).partition(|c| c.state == State::Missing);
    if !unmet.is_empty() {
        return Err(DoctorError::Unmet(unmet));
    }
    Ok(others
        .into_iter()
        .chain([checks::disk_space(host)])
        .filter(|c| !c.ok())
        .map(|c| {
            Notice(match &c.fix {
                Some(fix) => format!("{}: {}; fix: {fix}", c.check, c.detail),
                None => format!("{}: {}", c.check, c.detail),
            })
        })
        .collect())
}

/// Every check of `recipes doctor`, in order.
pub fn run_checks(host: &HostDescription) -> Vec<Check> {
    checks::all(host)
}

/// The exit code of `recipes doctor`: 2 when something is missing;
/// warnings do not fail.
pub fn exit_code(checks: &[Check]) -> i32 {
    if checks.iter().any(|c| c.state == State::Missing) {
        crate::exit::ERROR
    } else {
        crate::exit::OK
    }
}

#[cfg(test)]
mod tests;
