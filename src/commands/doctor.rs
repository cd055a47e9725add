//! `recipes doctor`: the checks of this host (or of a recorded one), as
//! lines or JSON, and the exit code (2 when something is missing).

use std::path::Path;

use crate::doctor::{self, HostDescription, State};
use crate::report::Format;

pub fn doctor(format: Format, host: Option<&Path>, describe: bool) -> anyhow::Result<i32> {
    let host = match host {
        Some(path) => HostDescription::from_file(path)?,
        None => HostDescription::read_live(),
    };
    if describe {
        println!("{}", serde_json::to_string_pretty(&host)?);
        return Ok(crate::exit::OK);
    }
    let checks = doctor::run_checks(&host);
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&checks)?),
        Format::Human => {
            println!(
                "recipes doctor: kernel {}, uid {}, cache {}",
                host.kernel.release,
                host.euid,
                host.cache.path.display()
            );
            let width = checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
            for check in &checks {
                println!("{check:width$}");
            }
            let count = |state| checks.iter().filter(|c| c.state == state).count();
            let (missing, warnings) = (count(State::Missing), count(State::Warn));
            let packages: Vec<&str> = checks
                .iter()
                .filter(|c| c.state == State::Missing)
                .filter_map(|c| c.check.strip_prefix("package "))
                .collect();
            if packages.len() > 1 && host.debian {
                println!(
                    "all the missing packages at once: apt-get install {}",
                    packages.join(" ")
                );
            }
            println!(
                "{}",
                match (missing, warnings) {
                    (0, 0) => "everything the runner needs is here".to_string(),
                    (0, w) => format!(
                        "everything the runner needs is here ({})",
                        super::count(w, "warning")
                    ),
                    (m, 0) => format!("{m} missing: fix them, then run `recipes doctor` again"),
                    (m, w) => format!(
                        "{m} missing, {}: fix them, then run `recipes doctor` again",
                        super::count(w, "warning")
                    ),
                }
            );
        }
    }
    Ok(doctor::exit_code(&checks))
}
