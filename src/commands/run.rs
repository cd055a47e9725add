//! `recipes run` and `recipes test`: load the book, make the plan, print it
//! (`--dry-run`) or run it, then report, record and bless.

use std::sync::Arc;

use anyhow::Context;

use crate::cli::RunSettings;
use crate::exit;
use crate::factory::{LocalFactory, SandboxFactory};
use crate::host::{self, Installer};
use crate::model::{index, Recipe, RecipeIndex, EMPTY_FIXTURE};
use crate::outcome::{Outcome, Status};
use crate::plan::{self, Pick, Plan, Selection};
use crate::process::Supervisor;
use crate::provenance::{HostFacts, Provenance};
use crate::report::event::{Fanout, Rank, Summary};
use crate::report::{self, Event, EventSink, Format, Junit};
use crate::runner::{self, EnvironmentFactory, RunConfig, RunContext};
use crate::status::Recorder;
use crate::workspace::{cache_dir, Workspace};

use super::{count, print_problems};

/// Which recipes the command line asks for (the changed pages are asked
/// of git once the book is known to be sound).
pub enum Asked {
    Ids(Vec<String>),
    All,
    Changed,
}

pub fn run(ws: &Workspace, lang: &str, asked: Asked, settings: RunSettings) -> anyhow::Result<i32> {
    let opts = &settings.opts;
    if opts.bless && !opts.dry_run && std::env::var_os("CI").is_some() {
        eprintln!("error: --bless rewrites the book's pages; it is refused when CI is set");
        return Ok(exit::ERROR);
    }
    let (book, mut problems) = ws.load(lang)?;
    if !problems.is_empty() {
        print_problems(&mut problems, false);
        eprintln!("error: the book has problems; `recipes check` lists them all");
        return Ok(exit::ERROR);
    }
    let ordered: Vec<&Recipe> = book.pages.iter().flat_map(|p| &p.recipes).collect();
    let all = index(ordered.iter().copied());
    let pick = match asked {
        Asked::Ids(ids) => Pick::Ids(ids),
        Asked::All => Pick::All,
        Asked::Changed => {
            let changed = match crate::workflow::changed_since_main(
                &ws.book_dir,
                &ws.fixtures_dir(),
                &ws.lib_dir(),
            ) {
                Ok(changed) => changed,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(exit::ERROR);
                }
            };
            if changed.lib {
                // Any step may source the shell helpers.
                eprintln!("recipes: recipes/lib changed, so every recipe runs");
                Pick::All
            } else {
                Pick::Changed {
                    pages: changed.pages,
                    fixtures: changed.fixtures,
                }
            }
        }
    };
    let changed = matches!(pick, Pick::Changed { .. });
    let selection = Selection {
        pick,
        partition: settings.partition,
        fixtures: opts.fixture.to_vec(),
        hosts: opts.host.to_vec(),
    };
    let plan = match plan::plan(lang, &ordered, &all, &selection, &ws.fixture_names()) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::ERROR);
        }
    };
    if changed && !opts.quiet {
        eprintln!(
            "recipes: {} on pages changed since the main branch",
            count(plan.runs.len(), "recipe")
        );
    }
    if opts.dry_run {
        match opts.format {
            Format::Human => print!("{plan}"),
            Format::Json => println!("{}", serde_json::to_string_pretty(&plan.to_json())?),
        }
        return Ok(exit::OK);
    }
    execute(ws, &plan, &all, &settings)
}

/// Runs a plan: signals, the run's sinks, prepare, the environment factory,
/// the runner, then the summary, blessings and the exit code. Everything
/// said goes through one event stream: the display (human or JSON lines),
/// GitHub annotations in a workflow, the status store and JUnit.
fn execute(
    ws: &Workspace,
    plan: &Plan,
    all: &RecipeIndex,
    settings: &RunSettings,
) -> anyhow::Result<i32> {
    let opts = &settings.opts;
    let config = run_config(ws, settings)?;
    let mut runs = plan.repeated(opts.repeat);
    // A shell session ran part of a recipe, or ran it by hand: no result.
    let exploring = matches!(
        settings.shell,
        Some(runner::ShellAt::End | runner::ShellAt::Before(_))
    );
    let display = report::display(opts.format, opts.quiet);
    let sinks = Sinks::new(ws, all, settings, &runs, exploring, Arc::clone(&display));
    let events = sinks.fanout();
    events.event(&Event::RunStarted {
        runs: runs.len(),
        jobs: config.jobs,
    });
    let supervisor = Supervisor::new();
    let signals = forward_signals(&supervisor)?;
    let installer = Installer::new(
        !opts.no_install,
        Arc::clone(&supervisor),
        Arc::clone(&display),
    );
    let mut unbuilt = std::collections::BTreeMap::new();
    if host::is_root() {
        match prepare(ws, plan, &installer, &supervisor, opts.quiet) {
            Ok(failed) => unbuilt = failed,
            Err(e) => {
                signals.close();
                eprintln!("error: {e}");
                return Ok(exit::ERROR);
            }
        }
    }
    let factory = environment_factory(
        ws,
        settings,
        &config,
        &supervisor,
        installer,
        unbuilt,
        sinks.display.as_ref(),
    )?;
    // Read after the installation: the host as the recipes see it.
    let provenance = provenance_of(ws);
    let order = schedule(ws, &mut runs, config.jobs);
    let context = RunContext {
        config: &config,
        factory: factory.as_ref(),
        supervisor: &supervisor,
        events: &events,
        provenance: &provenance,
    };
    let outcomes = runner::run_all(&runs, &order, &context);
    signals.close();
    if host::is_root() {
        crate::sandbox::cgroup::remove_parent_if_unused();
    } else {
        crate::process::stop_orphans();
    }
    // The display prints the summary, the recorder records, JUnit writes.
    events.event(&Event::RunFinished(Summary::of(&outcomes)));
    if opts.bless && !exploring {
        bless(ws, &events, &outcomes)?;
    }
    if let (Some(junit), Some(path)) = (sinks.junit, &opts.junit) {
        junit
            .written()
            .with_context(|| format!("cannot write the JUnit report {}", path.display()))?;
    }
    Ok(exit::of_run(&outcomes, supervisor.interrupted()))
}

/// The run's settings, already validated.
fn run_config(ws: &Workspace, settings: &RunSettings) -> anyhow::Result<RunConfig> {
    let opts = &settings.opts;
    Ok(RunConfig {
        default_timeout: settings.timeout,
        jobs: settings.jobs,
        require_all: opts.require_all,
        cache_dir: cache_dir(),
        verbose: opts.verbose,
        bless: opts.bless,
        checkpoints: !opts.no_checkpoint,
        shell: settings.shell,
        lib_dir: std::path::absolute(ws.lib_dir()).context("cannot resolve recipes/lib")?,
    })
}

/// The sinks of a run's events: the display, GitHub annotations in a
/// workflow, and, unless a shell session explores, the status store and
/// JUnit (`--junit`).
struct Sinks<'a> {
    display: Arc<dyn EventSink>,
    annotations: Option<report::github::Annotations<std::io::Stderr>>,
    recorder: Option<Recorder<'a>>,
    junit: Option<Junit>,
}

impl<'a> Sinks<'a> {
    fn new(
        ws: &Workspace,
        all: &'a RecipeIndex<'a>,
        settings: &RunSettings,
        runs: &[plan::RecipeRun],
        exploring: bool,
        display: Arc<dyn EventSink>,
    ) -> Sinks<'a> {
        let recording = !exploring;
        Sinks {
            display,
            annotations: report::github::in_workflow()
                .then(|| report::github::Annotations::new(std::io::stderr())),
            recorder: recording.then(|| Recorder::new(&ws.status_path(), all, rank_of(runs))),
            junit: (settings.opts.junit.as_deref())
                .filter(|_| recording)
                .map(|path| Junit::new(path, rank_of(runs))),
        }
    }

    fn fanout(&self) -> Fanout<'_> {
        let mut sinks: Vec<&dyn EventSink> = vec![self.display.as_ref()];
        sinks.extend(self.annotations.as_ref().map(|s| s as &dyn EventSink));
        sinks.extend(self.recorder.as_ref().map(|s| s as &dyn EventSink));
        sinks.extend(self.junit.as_ref().map(|s| s as &dyn EventSink));
        Fanout(sinks)
    }
}

/// With several jobs, the longest recipes (as last measured) start first,
/// each weighted on the processors by its length, so that the longest,
/// which bounds the run, is slowed least (see [`runner::cpu_weight`]); one
/// job keeps the book's order and the default weight. The order to start
/// `runs` in; their weights are set in place.
fn schedule(ws: &Workspace, runs: &mut [plan::RecipeRun], jobs: usize) -> Vec<usize> {
    if jobs <= 1 {
        return Vec::new();
    }
    let past = crate::status::Store::read(&ws.status_path()).unwrap_or_default();
    let expected: Vec<Option<std::time::Duration>> = runs
        .iter()
        .map(|run| {
            let key = crate::model::result_key(&run.fixture, run.host.as_deref());
            past.duration(&run.recipe.id, &key)
        })
        .collect();
    let longest = expected.iter().flatten().max().copied();
    for (run, expected) in runs.iter_mut().zip(&expected) {
        run.cpu_weight = runner::cpu_weight(*expected, longest);
    }
    runner::longest_first(&expected, |e| *e)
}

/// Where an outcome's run stands in `runs` (attempts included), so that
/// the sinks that gather outcomes keep the plan's order.
fn rank_of(runs: &[plan::RecipeRun]) -> Rank {
    type Key = (String, String, Option<String>, u32);
    let ranks: std::collections::HashMap<Key, usize> = runs
        .iter()
        .enumerate()
        .map(|(i, run)| {
            let key = (
                run.recipe.id.clone(),
                run.fixture.clone(),
                run.host.clone(),
                run.attempt,
            );
            (key, i)
        })
        .collect();
    Box::new(move |o: &Outcome| {
        let host = Some(o.provenance.host.clone()).filter(|h| h != "none");
        let key = (o.id.clone(), o.fixture.clone(), host, o.attempt);
        ranks.get(&key).copied().unwrap_or(usize::MAX)
    })
}

/// Before any sandbox starts: what every sandbox needs, checked as
/// `recipes doctor` checks it; the kernel modules loaded; then the host
/// commands the plan's recipes call and those that build its missing bases,
/// installed with one notice and one `apt-get` call (unless `--no-install`:
/// then each recipe that lacks one says so); then the plan's missing bases,
/// built side by side, each once. A base that cannot be built fails only
/// the runs on it: returned by name, with the reason. All of it is said
/// through the installer's events.
fn prepare(
    ws: &Workspace,
    plan: &Plan,
    installer: &Installer,
    supervisor: &Arc<Supervisor>,
    quiet: bool,
) -> anyhow::Result<crate::factory::Unbuilt> {
    let events = installer.events();
    // What every sandbox needs, as `recipes doctor` checks it: one clear
    // message instead of an error per recipe.
    let say = |notices: Vec<crate::doctor::Notice>| {
        for notice in notices.iter().filter(|_| !quiet) {
            events.event(&Event::Notice {
                message: notice.to_string(),
            });
        }
    };
    say(crate::doctor::preflight(
        &crate::doctor::HostDescription::read_for_run(),
    )?);
    // A sandbox cannot load modules; a stock kernel loads them on first use.
    say(crate::doctor::load_modules(crate::doctor::RUNNER_MODULES)?);
    let store = ws.store();
    if installer.allowed {
        install(&store, plan, installer)?;
    }
    let exe = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("cannot find the recipes binary: {e}"))?;
    let cache = cache_dir();
    std::fs::create_dir_all(&cache)
        .map_err(crate::fsutil::FsError::at("create the cache", &cache))?;
    let builder = crate::factory::BaseBuilder {
        installer,
        supervisor,
        exe: &exe,
        cache: &cache,
    };
    let missing: Vec<&str> = plan
        .fixtures()
        .into_iter()
        .filter(|f| {
            store
                .definition(f)
                .is_ok_and(|def| store.built(&def).is_none())
        })
        .collect();
    let failed = std::thread::scope(|scope| {
        let builds: Vec<_> = missing
            .iter()
            .map(|name| {
                let (store, builder) = (&store, &builder);
                (name, scope.spawn(move || store.ensure(name, builder)))
            })
            .collect();
        builds
            .into_iter()
            .filter_map(|(name, build)| {
                let why = match build.join() {
                    Ok(Ok(_)) => return None,
                    Ok(Err(e)) => e,
                    Err(_) => crate::fixture::FixtureError::Panicked,
                };
                events.event(&Event::Notice {
                    message: format!("recipes: {why}; the recipes on `{name}` cannot run"),
                });
                Some((name.to_string(), Arc::new(why)))
            })
            .collect()
    });
    Ok(failed)
}

/// The host commands the plan calls and those that build its missing bases,
/// with one notice and one `apt-get` call.
fn install(
    store: &crate::fixture::Store,
    plan: &Plan,
    installer: &Installer,
) -> Result<(), crate::host::InstallError> {
    let mut needs = plan.host_commands();
    for fixture in plan.fixtures() {
        if let Ok(def) = store.definition(fixture) {
            if store.built(&def).is_none() {
                needs.extend(def.spec.kind.host_needs().iter().copied());
            }
        }
    }
    let needs: Vec<_> = needs.into_iter().collect();
    installer.ensure(&needs)
}

/// The provenance of a result on a fixture: the host's facts (read once),
/// the definition's digest and the release of its base, when built.
fn provenance_of(ws: &Workspace) -> impl Fn(&str) -> Provenance + Sync {
    // `lxc-start --version` takes a while: asked beside the first sandbox.
    let pending = std::sync::Mutex::new(Some(std::thread::spawn(HostFacts::gather)));
    let facts = std::sync::OnceLock::new();
    let store = ws.store();
    move |fixture: &str| {
        let host = facts.get_or_init(|| {
            pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .and_then(|h| h.join().ok())
                .unwrap_or_else(HostFacts::gather)
        });
        if fixture == EMPTY_FIXTURE {
            return host.with_fixture(fixture, EMPTY_FIXTURE, None);
        }
        match store.definition(fixture) {
            Ok(def) => {
                let rootfs = store.built(&def).map(|(rootfs, _)| rootfs);
                host.with_fixture(fixture, &def.hash, rootfs.as_deref())
            }
            Err(_) => host.with_fixture(fixture, "unknown", None),
        }
    }
}

/// Ctrl-C, SIGTERM and SIGHUP stop every running step (through the
/// supervisor); the returned handle stops listening.
pub(super) fn forward_signals(
    supervisor: &Arc<Supervisor>,
) -> anyhow::Result<signal_hook::iterator::Handle> {
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])
    .context("cannot install signal handlers")?;
    let handle = signals.handle();
    let supervisor = Arc::clone(supervisor);
    std::thread::spawn(move || {
        for _ in signals.forever() {
            supervisor.interrupt();
        }
    });
    Ok(handle)
}

/// Sandboxes on cached fixtures as root; plain processes otherwise.
fn environment_factory(
    ws: &Workspace,
    settings: &RunSettings,
    config: &RunConfig,
    supervisor: &Arc<Supervisor>,
    installer: Installer,
    unbuilt: crate::factory::Unbuilt,
    events: &dyn EventSink,
) -> anyhow::Result<Box<dyn EnvironmentFactory>> {
    let opts = &settings.opts;
    if host::is_root() {
        crate::sandbox::cgroup::remove_stale();
        // It must exist before the first sandbox, to stay visible in it.
        std::fs::create_dir_all(&config.cache_dir)
            .with_context(|| format!("cannot create the cache {}", config.cache_dir.display()))?;
        return Ok(Box::new(SandboxFactory {
            store: ws.store(),
            installer,
            supervisor: Arc::clone(supervisor),
            exe: std::env::current_exe().context("cannot find the recipes binary")?,
            keep: opts.keep.then(|| config.cache_dir.join("kept")),
            cache: std::path::absolute(&config.cache_dir)
                .context("cannot resolve the cache folder")?,
            lib: config.lib_dir.clone(),
            lib_digest: crate::checkpoint::lib_digest(&config.lib_dir),
            boot_timeout: config.default_timeout,
            unbuilt,
        }));
    }
    if !opts.quiet {
        events.event(&Event::Notice {
            message: "recipes: not root, so no sandbox: steps run as ordinary processes, and recipes on real fixtures need root".into(),
        });
    }
    // Orphans of the steps (a daemon that left with setsid) come back to
    // us, so they can be stopped when the run ends.
    crate::process::adopt_orphans();
    for kind in ["recipes-rootfs", "recipes-scratch"] {
        crate::env::remove_stale_temp(&std::env::temp_dir(), kind);
    }
    Ok(Box::new(LocalFactory { keep: opts.keep }))
}

/// Writes what `--bless` produced into every language (all or nothing),
/// and says which failures it could not turn into new expected output.
fn bless(ws: &Workspace, events: &dyn EventSink, outcomes: &[Outcome]) -> anyhow::Result<()> {
    let blessed: Vec<_> = outcomes.iter().flat_map(|o| o.blessed.clone()).collect();
    let written = crate::workflow::apply_blessings(&ws.book_dir, &blessed)?;
    for path in written {
        events.event(&Event::Blessed {
            path: path.display().to_string(),
        });
    }
    for o in outcomes {
        let (location, message) = match (&o.status, &o.failure) {
            (Status::Passed | Status::Skipped(_) | Status::Interrupted, _) => continue,
            (_, Some(f)) => (f.step.to_string(), f.message.clone()),
            (Status::Error(reason), None) => (o.location.to_string(), reason.to_string()),
            (status, None) => (o.location.to_string(), status.as_str().to_string()),
        };
        events.event(&Event::NotBlessed {
            id: o.id.clone(),
            fixture: o.fixture.clone(),
            location,
            message,
        });
    }
    Ok(())
}
