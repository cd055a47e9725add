//! `recipes fixture list|build|clean`: the cached bases.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};

use crate::cli::FixtureCommand;
use crate::exit;
use crate::factory::{checkpoint_key, lib_digest, BaseBuilder};
use crate::fsutil::disk_usage;
use crate::host::{self, Installer};
use crate::model::{chain, index, Recipe, EMPTY_FIXTURE};
use crate::process::Supervisor;
use crate::workspace::{cache_dir, Workspace};

pub fn fixture(ws: &Workspace, lang: &str, command: FixtureCommand) -> anyhow::Result<i32> {
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
            match checkpoints(ws, lang) {
                Ok(found) => list_checkpoints(&found),
                Err(e) => eprintln!("recipes: checkpoints not listed: {e}"),
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
        FixtureCommand::Clean { stale: true, .. } => {
            for removed in store.clean_stale()? {
                println!("removed {removed}");
            }
            // Which checkpoints are stale is known from the book's chains.
            let found = checkpoints(ws, lang).context("checkpoints not cleaned")?;
            for dir in found.stale {
                remove_checkpoint(&dir)?;
            }
            Ok(exit::OK)
        }
        FixtureCommand::Clean { name, .. } => {
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
                    remove_checkpoint(&entry.path())?;
                }
            }
            Ok(exit::OK)
        }
    }
}

fn remove_checkpoint(dir: &Path) -> anyhow::Result<()> {
    let removed = if dir.is_dir() {
        std::fs::remove_dir_all(dir)
    } else {
        // Not a checkpoint, but nothing else belongs in the folder.
        std::fs::remove_file(dir)
    };
    removed.with_context(|| format!("cannot remove {}", dir.display()))?;
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    println!("removed checkpoint {name}");
    Ok(())
}

/// The checkpoint layers in the cache: those a run of the book as it is now
/// starts from (with the chain they end), and the stale ones (of chains, a
/// fixture or a tool that changed since, or left half-made by a killed run).
struct Checkpoints {
    current: Vec<(PathBuf, String)>,
    stale: Vec<PathBuf>,
}

fn checkpoints(ws: &Workspace, lang: &str) -> anyhow::Result<Checkpoints> {
    let mut found = Checkpoints {
        current: Vec::new(),
        stale: Vec::new(),
    };
    let layers = crate::factory::layers_dir(&cache_dir());
    let entries: Vec<_> = std::fs::read_dir(&layers)
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    if entries.is_empty() {
        return Ok(found);
    }
    let mut wanted: BTreeMap<String, String> = BTreeMap::new();
    let definitions = ws.store().definitions()?;
    let (book, _) = ws.load(lang)?;
    let lib = lib_digest(&ws.lib_dir());
    {
        let ordered: Vec<&Recipe> = book.pages.iter().flat_map(|p| &p.recipes).collect();
        let all = index(ordered.iter().copied());
        for recipe in &ordered {
            let chain = chain(recipe, &all);
            let Some((_, prerequisites)) = chain.split_last() else {
                continue;
            };
            if prerequisites.is_empty() {
                continue;
            }
            let ids: Vec<String> = prerequisites
                .iter()
                .map(|r| format!("`{}`", r.id))
                .collect();
            // Any fixture: a chain also runs on others with `--fixture`.
            for def in &definitions {
                let key = checkpoint_key(def, prerequisites, &lib);
                wanted.insert(
                    format!("{}-{key}", def.name),
                    format!("{} after {}", def.name, ids.join(" → ")),
                );
            }
        }
    }
    for entry in entries {
        let file = entry.file_name().to_string_lossy().into_owned();
        if let Some(label) = wanted.get(&file) {
            found.current.push((entry.path(), label.clone()));
        } else if !being_built(&file) {
            found.stale.push(entry.path());
        }
    }
    found.current.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(found)
}

/// `.NAME.PID.RANDOM.partial`, a layer a live run is still copying.
fn being_built(file: &str) -> bool {
    let Some(rest) = file.strip_suffix(".partial") else {
        return false;
    };
    rest.rsplit('.')
        .nth(1)
        .and_then(|pid| pid.parse::<u32>().ok())
        .is_some_and(crate::process::process_exists)
}

fn list_checkpoints(found: &Checkpoints) {
    if found.current.is_empty() && found.stale.is_empty() {
        return;
    }
    let now = std::time::SystemTime::now();
    println!();
    println!("{:<42} {:>8} {:>8}", "checkpoint", "size", "age");
    for (dir, label) in &found.current {
        let age = std::fs::metadata(dir)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .map_or("-".into(), |d| human_age(d.as_secs()));
        println!("{label:<42} {:>8} {age:>8}", human_size(disk_usage(dir)));
    }
    if !found.stale.is_empty() {
        let size: u64 = found.stale.iter().map(|d| disk_usage(d)).sum();
        println!(
            "(+{} stale, {}: `recipes fixture clean --stale` removes them)",
            found.stale.len(),
            human_size(size)
        );
    }
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b < 1 << 20 => format!("{} KB", b.div_ceil(1 << 10)),
        b => format!("{} MB", b >> 20),
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
