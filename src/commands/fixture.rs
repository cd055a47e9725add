//! `recipes fixture list|build|clean`: the cached bases.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};

use crate::checkpoint::store::Sorted;
use crate::checkpoint::{self, lib_digest, Layers};
use crate::cli::FixtureCommand;
use crate::exit;
use crate::factory::BaseBuilder;
use crate::fsutil::disk_usage;
use crate::host::{self, Installer};
use crate::model::{Recipe, EMPTY_FIXTURE};
use crate::process::Supervisor;
use crate::report::{Event, Format};
use crate::workspace::{cache_dir, Workspace};

pub fn fixture(ws: &Workspace, lang: &str, command: FixtureCommand) -> anyhow::Result<i32> {
    match command {
        FixtureCommand::List => list(ws, lang),
        FixtureCommand::Build { name, format } => build(ws, &name, format),
        FixtureCommand::Clean { stale: true, .. } => clean_stale(ws, lang),
        FixtureCommand::Clean { name, .. } => clean(ws, name.as_deref()),
    }
}

/// `fixture list`: every definition with its base, then the checkpoints.
fn list(ws: &Workspace, lang: &str) -> anyhow::Result<i32> {
    let store = ws.store();
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

/// `fixture build NAME`: the base built through the run's events (human
/// text, or JSON lines with `--format json`), then where it is.
fn build(ws: &Workspace, name: &str, format: Format) -> anyhow::Result<i32> {
    let events = crate::report::display(format, false);
    if name == EMPTY_FIXTURE {
        let message = format!(
            "`{EMPTY_FIXTURE}` is built in (a fresh empty folder per run): nothing to build"
        );
        match format {
            Format::Human => println!("{message}"),
            Format::Json => events.event(&Event::Notice { message }),
        }
        return Ok(exit::OK);
    }
    if !host::is_root() {
        bail!("building a fixture needs root (debootstrap and chroot): run as root");
    }
    let supervisor = Supervisor::new();
    let signals = super::run::forward_signals(&supervisor)?;
    let installer = Installer::new(true, Arc::clone(&supervisor), Arc::clone(&events));
    let exe = std::env::current_exe().context("cannot find the recipes binary")?;
    let cache = std::path::absolute(cache_dir()).context("cannot resolve the cache")?;
    let builder = BaseBuilder {
        installer: &installer,
        supervisor: &supervisor,
        exe: &exe,
        cache: &cache,
    };
    let built = ws.store().ensure(name, &builder);
    signals.close();
    if supervisor.interrupted() {
        eprintln!("recipes: interrupted; the half-made base was removed");
        return Ok(exit::INTERRUPTED);
    }
    let rootfs = built?;
    if format == Format::Human {
        println!("{name}: {}", rootfs.display());
    }
    Ok(exit::OK)
}

/// `fixture clean --stale`: the bases of older definitions, and the
/// checkpoints no chain of the book starts from any more.
fn clean_stale(ws: &Workspace, lang: &str) -> anyhow::Result<i32> {
    for removed in ws.store().clean_stale()? {
        println!("removed {removed}");
    }
    // Which checkpoints are stale is known from the book's chains.
    let found = checkpoints(ws, lang).context("checkpoints not cleaned")?;
    for dir in found.stale {
        remove_checkpoint(&dir)?;
    }
    Ok(exit::OK)
}

/// `fixture clean [NAME]`: the bases (of one fixture, or all) and the
/// checkpoints on them.
fn clean(ws: &Workspace, name: Option<&str>) -> anyhow::Result<i32> {
    let store = ws.store();
    if let Some(name) = name {
        store.definition(name)?;
    }
    for removed in store.clean(name)? {
        println!("removed {removed}");
    }
    // Checkpoints are layers on a base: they go with it.
    for dir in Layers::new(&cache_dir()).of_fixture(name) {
        remove_checkpoint(&dir)?;
    }
    Ok(exit::OK)
}

fn remove_checkpoint(dir: &Path) -> anyhow::Result<()> {
    Layers::remove(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    println!("removed checkpoint {name}");
    Ok(())
}

/// The checkpoint layers in the cache, sorted by the book's chains as they
/// are now.
fn checkpoints(ws: &Workspace, lang: &str) -> anyhow::Result<Sorted> {
    let layers = Layers::new(&cache_dir());
    let entries = layers.entries();
    if entries.is_empty() {
        return Ok(Sorted::default());
    }
    let definitions = ws.store().definitions()?;
    let (book, _) = ws.load(lang)?;
    let lib = lib_digest(&ws.lib_dir());
    let ordered: Vec<&Recipe> = book.pages.iter().flat_map(|p| &p.recipes).collect();
    let fixtures = definitions
        .iter()
        .map(|d| (d.name.as_str(), d.hash.as_str()));
    let current = checkpoint::key::current(fixtures, &ordered, &lib);
    Ok(Layers::sort(entries, &current))
}

fn list_checkpoints(found: &Sorted) {
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
