//! `recipes fixture list|build|clean`: the cached bases.

use std::sync::Arc;

use anyhow::{bail, Context};

use crate::cli::FixtureCommand;
use crate::exit;
use crate::factory::BaseBuilder;
use crate::host::{self, Installer};
use crate::model::EMPTY_FIXTURE;
use crate::runner::process::Supervisor;
use crate::workspace::{cache_dir, Workspace};

pub fn fixture(ws: &Workspace, command: FixtureCommand) -> anyhow::Result<i32> {
    let store = ws.store();
    match command {
        FixtureCommand::List => {
            println!(
                "{:<24} {:<18} {:>8} {:>8}  description",
                "name", "state", "size", "age"
            );
            println!(
                "{:<24} {:<18} {:>8} {:>8}  a fresh empty folder (built in)",
                EMPTY_FIXTURE, "built-in", "-", "-"
            );
            for def in store.definitions()? {
                let (state, size, age) = match store.built(&def) {
                    Some((_, info)) => {
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs());
                        (
                            "built",
                            format!("{} MB", info.size >> 20),
                            human_age(now.saturating_sub(info.built_at)),
                        )
                    }
                    None => ("not built", "-".into(), "-".into()),
                };
                // An older definition's base is still there: say so.
                let state = match store.stale(&def) {
                    0 => state.to_string(),
                    n => format!("{state} (+{n} stale)"),
                };
                println!(
                    "{:<24} {:<18} {:>8} {:>8}  {}",
                    def.name,
                    state,
                    size,
                    age,
                    def.spec.description.as_deref().unwrap_or("")
                );
            }
            Ok(exit::OK)
        }
        FixtureCommand::Build { name } if name == EMPTY_FIXTURE => {
            println!(
                "`{EMPTY_FIXTURE}` is built in (a fresh empty folder per run): nothing to build"
            );
            Ok(exit::OK)
        }
        FixtureCommand::Build { name } => {
            if !host::is_root() {
                bail!("building a fixture needs root (debootstrap and chroot): run as root");
            }
            let supervisor = Supervisor::new();
            let signals = super::run::forward_signals(&supervisor)?;
            let installer = Installer::new(true, Arc::clone(&supervisor));
            let exe = std::env::current_exe().context("cannot find the recipes binary")?;
            let cache = std::path::absolute(cache_dir()).context("cannot resolve the cache")?;
            let builder = BaseBuilder {
                installer: &installer,
                supervisor: &supervisor,
                exe: &exe,
                cache: &cache,
            };
            let built = store.ensure(&name, &builder);
            signals.close();
            if supervisor.interrupted() {
                eprintln!("recipes: interrupted; the half-made base was removed");
                return Ok(exit::INTERRUPTED);
            }
            let rootfs = built?;
            println!("{name}: {}", rootfs.display());
            Ok(exit::OK)
        }
        FixtureCommand::Clean { name } => {
            if let Some(name) = &name {
                store.definition(name)?;
            }
            for removed in store.clean(name.as_deref())? {
                println!("removed {removed}");
            }
            // Checkpoints are layers on a base: they go with it.
            let layers = crate::factory::layers_dir(&cache_dir());
            for entry in std::fs::read_dir(&layers).into_iter().flatten().flatten() {
                let file = entry.file_name().to_string_lossy().into_owned();
                let fixture = file
                    .trim_start_matches('.')
                    .rsplit_once('-')
                    .map(|(stem, _)| stem);
                if name.is_none() || fixture == name.as_deref() {
                    std::fs::remove_dir_all(entry.path())
                        .with_context(|| format!("cannot remove {}", entry.path().display()))?;
                    println!("removed checkpoint {file}");
                }
            }
            Ok(exit::OK)
        }
    }
}

fn human_age(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}
