//! One function per command: load what the command needs, call the library,
//! print, and return the exit code.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};

use crate::check::{check_book, check_parity};
use crate::cli::{BookCommand, FixtureCommand};
use crate::cli::{Cli, Command, Plan};
use crate::exit;
use crate::factory::{LocalFactory, SandboxFactory};
use crate::fixture::Store;
use crate::host::{self, Installer};
use crate::model::{Book, Outcome, Recipe, Status, EMPTY_FIXTURE};
use crate::parse::{languages, load_book, Problem};
use crate::report::{self, Console, Format};
use crate::runner::process::Supervisor;
use crate::runner::{self, EnvironmentFactory, RunConfig};

pub fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let ws = Workspace::new(&cli.book);
    if matches!(
        cli.command,
        Command::List { .. }
            | Command::Check
            | Command::Fixture { .. }
            | Command::Completions { .. }
            | Command::Man
    ) {
        // Commands that only print may die quietly when their reader goes
        // away (`recipes list | head`), as Unix tools do. Commands that run
        // steps keep SIGPIPE ignored: a step closing its stdin must not kill
        // the runner.
        // SAFETY: restoring the default disposition installs no handler.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match cli.command {
        Command::List { format } => list(&ws, &cli.lang, format),
        Command::Check => check(&ws),
        Command::Run { ids, opts } => {
            let plan = Plan::new(opts, None, None)?;
            run(&ws, &cli.lang, Selection::Ids(&ids), plan)
        }
        Command::Test {
            jobs,
            partition,
            changed,
            opts,
        } => {
            let plan = Plan::new(opts, jobs, partition.as_deref())?;
            let selection = if changed {
                Selection::Changed
            } else {
                Selection::All
            };
            run(&ws, &cli.lang, selection, plan)
        }
        Command::Book { command } => match command {
            BookCommand::Build { out } => {
                let diagnostics = crate::site::diagnostics::install();
                crate::site::build(&ws.book_dir, &out, &ws.status_path())?;
                println!(
                    "built {} (English: {})",
                    out.display(),
                    out.join("en").display()
                );
                match diagnostics.errors() {
                    0 => Ok(exit::OK),
                    n => {
                        eprintln!(
                            "error: mdBook reported {n} error{} (above); `recipes check` shows where",
                            if n == 1 { "" } else { "s" }
                        );
                        Ok(exit::ERROR)
                    }
                }
            }
            BookCommand::Serve { port, out } => {
                crate::site::diagnostics::install();
                Ok(crate::site::serve(
                    &ws.book_dir,
                    &out,
                    &ws.status_path(),
                    port,
                )?)
            }
        },
        Command::New {
            id,
            title_fr,
            title_en,
        } => {
            let titles = [("fr".to_string(), title_fr), ("en".to_string(), title_en)]
                .into_iter()
                .collect();
            for path in crate::workflow::new_page(&ws.book_dir, &id, &titles)? {
                println!("wrote {}", path.display());
            }
            println!("next: edit the pages, then `recipes run {id}` until it passes");
            Ok(exit::OK)
        }
        Command::Mdbook { args } => match args.as_slice() {
            [] => crate::site::mdbook_command(None),
            [verb, renderer] if verb == "supports" => crate::site::mdbook_command(Some(renderer)),
            _ => bail!("usage: recipes mdbook [supports RENDERER]"),
        },
        Command::Fixture { command } => fixture(&ws, command),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut public_cli(), "recipes", &mut std::io::stdout());
            Ok(exit::OK)
        }
        Command::Man => {
            let cli = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cli).render(&mut std::io::stdout())?;
            Ok(exit::OK)
        }
        Command::Sandbox { spec } => Ok(crate::sandbox::helper::sandbox_main(&spec)),
        Command::Enter {
            pid,
            cwd,
            chroot,
            argv,
        } => Ok(crate::sandbox::helper::enter_main(
            pid,
            &cwd,
            chroot.as_deref(),
            &argv,
        )),
    }
}

/// The command line without its hidden subcommands, which shells would
/// otherwise offer (clap_complete lists them).
fn public_cli() -> clap::Command {
    let full = <Cli as clap::CommandFactory>::command();
    let visible: Vec<clap::Command> = full
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let mut public = clap::Command::new("recipes")
        .version(env!("RECIPES_VERSION"))
        .subcommands(visible);
    for arg in full.get_arguments() {
        public = public.arg(arg.clone());
    }
    public
}

/// The book folder and the `recipes/` folder beside it.
pub struct Workspace {
    pub book_dir: PathBuf,
    pub recipes_dir: PathBuf,
}

impl Workspace {
    fn new(book: &Path) -> Self {
        let recipes_dir = match book.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.join("recipes"),
            _ => PathBuf::from("recipes"),
        };
        Workspace {
            book_dir: book.to_path_buf(),
            recipes_dir,
        }
    }

    /// The project root: the folder holding `book/` and `recipes/`.
    fn project(&self) -> PathBuf {
        self.recipes_dir
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    fn status_path(&self) -> PathBuf {
        crate::site::status::store_path(&self.project())
    }

    fn store(&self) -> Store {
        Store::new(self.recipes_dir.join("fixtures"), &cache_dir())
    }

    /// Every fixture a recipe may name: the defined ones and `empty`.
    fn fixture_names(&self) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = self.store().names().into_iter().collect();
        names.insert(EMPTY_FIXTURE.to_string());
        names
    }

    fn load(&self, lang: &str) -> anyhow::Result<(Book, Vec<Problem>)> {
        let (book, mut problems) = load_book(&self.book_dir, lang)?;
        problems.extend(check_book(&book, &self.fixture_names()));
        Ok((book, problems))
    }
}

fn print_problems(problems: &mut [Problem], to_stdout: bool) {
    problems.sort_by(|a, b| a.location.cmp(&b.location));
    for p in problems.iter() {
        if to_stdout {
            println!("{p}");
        } else {
            eprintln!("{p}");
        }
    }
}

fn list(ws: &Workspace, lang: &str, format: Format) -> anyhow::Result<i32> {
    let (book, mut problems) = ws.load(lang)?;
    print_problems(&mut problems, false);
    let recipes: Vec<&Recipe> = book.pages.iter().flat_map(|p| &p.recipes).collect();
    let all = runner::index(recipes.iter().copied());
    // The fixture a recipe runs on (a recipe it needs may declare it).
    let fixture = |r: &Recipe| runner::declared_fixture(&runner::chain(r, &all)).to_string();
    match format {
        Format::Json => {
            let json: Vec<serde_json::Value> = recipes
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r.id,
                        "lang": r.lang,
                        "page": r.page,
                        "line": r.location.line,
                        "fixture": fixture(r),
                        "steps": r.steps.iter().map(|s| serde_json::json!({
                            "line": s.location.line,
                            "kind": s.kind.as_str(),
                            "syntax": s.syntax,
                            "attrs": s.attrs,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        Format::Human => {
            let width = recipes.iter().map(|r| r.id.len()).max().unwrap_or(0);
            for r in &recipes {
                println!(
                    "{:width$}  {}:{}  fixture={}  {} step{}",
                    r.id,
                    r.page,
                    r.location.line,
                    fixture(r),
                    r.steps.len(),
                    if r.steps.len() == 1 { "" } else { "s" }
                );
            }
        }
    }
    Ok(exit::OK)
}

fn check(ws: &Workspace) -> anyhow::Result<i32> {
    let langs = languages(&ws.book_dir);
    if langs.is_empty() {
        bail!(
            "{}: no book here (expected {}/fr/book.toml and {}/en/book.toml)",
            ws.book_dir.display(),
            ws.book_dir.display(),
            ws.book_dir.display()
        );
    }
    let mut problems = Vec::new();
    let mut books = Vec::new();
    for lang in &langs {
        let (book, p) = ws.load(lang)?;
        problems.extend(p);
        problems.extend(crate::links::check_links(&book));
        books.push(book);
    }
    for translation in &books[1..] {
        problems.extend(check_parity(&books[0], translation));
    }
    // Fixture definitions the recipes rely on must parse.
    let store = ws.store();
    for name in store.names() {
        if let Err(crate::fixture::FixtureError::Definition { path, message }) =
            store.definition(&name)
        {
            problems.push(Problem {
                location: crate::model::Location {
                    line: toml_error_line(&message),
                    path,
                },
                // The last line of a TOML error says what is wrong.
                message: message
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or_default()
                    .to_string(),
            });
        }
    }
    if problems.is_empty() {
        let count: usize = books[0].pages.iter().map(|p| p.recipes.len()).sum();
        println!(
            "ok: {count} recipes, {} languages ({})",
            books.len(),
            langs.join(", ")
        );
        return Ok(exit::OK);
    }
    print_problems(&mut problems, true);
    eprintln!(
        "{} problem{} found",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    Ok(exit::ERROR)
}

fn cache_dir() -> PathBuf {
    std::env::var_os("RECIPES_CACHE")
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("recipes")))
        .unwrap_or_else(|| std::env::temp_dir().join("recipes-cache"))
}

/// Which recipes `run`/`test` take.
enum Selection<'a> {
    Ids(&'a [String]),
    All,
    Changed,
}

fn run(ws: &Workspace, lang: &str, selection: Selection, plan: Plan) -> anyhow::Result<i32> {
    if plan.opts.bless && std::env::var_os("CI").is_some() {
        eprintln!("error: --bless rewrites the book's pages; it is refused when CI is set");
        return Ok(exit::ERROR);
    }
    let (book, mut problems) = ws.load(lang)?;
    if !problems.is_empty() {
        print_problems(&mut problems, false);
        eprintln!("error: the book has problems; `recipes check` lists them all");
        return Ok(exit::ERROR);
    }
    let all = runner::index(book.pages.iter().flat_map(|p| &p.recipes));
    let ordered: Vec<&Recipe> = book.pages.iter().flat_map(|p| &p.recipes).collect();
    let selected: Vec<&Recipe> = match selection {
        Selection::Ids(ids) => {
            let mut selected = Vec::new();
            for id in ids {
                match all.get(id.as_str()) {
                    Some(r) => selected.push(*r),
                    None => {
                        eprintln!(
                            "error: no recipe `{id}` in the `{lang}` book{}",
                            suggest(id, all.keys().copied())
                        );
                        return Ok(exit::ERROR);
                    }
                }
            }
            selected
        }
        Selection::All => ordered
            .into_iter()
            .enumerate()
            .filter(|(i, _)| plan.in_partition(*i))
            .map(|(_, r)| r)
            .collect(),
        Selection::Changed => {
            let (pages, fixtures) = crate::workflow::changed_since_main(
                &ws.book_dir,
                &ws.recipes_dir.join("fixtures"),
            )?;
            let touched = |r: &Recipe| {
                pages.contains(&r.page)
                    || fixtures.contains(runner::declared_fixture(&runner::chain(r, &all)))
            };
            // A recipe is re-run when it, or a recipe it needs, changed.
            let selected: Vec<&Recipe> = ordered
                .into_iter()
                .filter(|r| runner::chain(r, &all).iter().any(|c| touched(c)))
                .enumerate()
                .filter(|(i, _)| plan.in_partition(*i))
                .map(|(_, r)| r)
                .collect();
            if !plan.opts.quiet {
                eprintln!(
                    "recipes: {} recipe{} on pages changed since the main branch",
                    selected.len(),
                    if selected.len() == 1 { "" } else { "s" }
                );
            }
            selected
        }
    };
    if let Some(name) = &plan.opts.fixture {
        if !ws.fixture_names().contains(name) {
            eprintln!(
                "error: unknown fixture `{name}`{}",
                suggest(name, ws.fixture_names().iter().map(String::as_str))
            );
            return Ok(exit::ERROR);
        }
    }
    let config = RunConfig {
        default_timeout: plan.timeout,
        jobs: plan.jobs,
        keep: plan.opts.keep,
        fixture_override: plan.opts.fixture.clone(),
        require_all: plan.opts.require_all,
        cache_dir: cache_dir(),
        verbose: plan.opts.verbose,
        bless: plan.opts.bless,
        lib_dir: std::path::absolute(ws.recipes_dir.join("lib"))
            .context("cannot resolve recipes/lib")?,
    };
    let supervisor = Supervisor::new();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])
    .context("cannot install signal handlers")?;
    let handle = signals.handle();
    {
        let supervisor = Arc::clone(&supervisor);
        std::thread::spawn(move || {
            for _ in signals.forever() {
                supervisor.interrupt();
            }
        });
    }
    let console = Console::new(plan.opts.format, plan.opts.quiet, selected.len());
    let factory: Box<dyn EnvironmentFactory> = if host::is_root() {
        crate::sandbox::cgroup::remove_stale();
        // It must exist before the first sandbox, to stay visible in it.
        std::fs::create_dir_all(&config.cache_dir)
            .with_context(|| format!("cannot create the cache {}", config.cache_dir.display()))?;
        Box::new(SandboxFactory {
            store: ws.store(),
            installer: Installer::new(!plan.opts.no_install),
            exe: std::env::current_exe().context("cannot find the recipes binary")?,
            keep: plan.opts.keep.then(|| config.cache_dir.join("kept")),
            visible: vec![
                std::path::absolute(&config.cache_dir)
                    .context("cannot resolve the cache folder")?,
                config.lib_dir.clone(),
            ],
        })
    } else {
        if !plan.opts.quiet {
            eprintln!("recipes: not root, so no sandbox: steps run as ordinary processes, and recipes on real fixtures need root");
        }
        // Orphans of the steps (a daemon that left with setsid) come back to
        // us, so they can be stopped when the run ends.
        crate::runner::process::adopt_orphans();
        for kind in ["recipes-rootfs", "recipes-scratch"] {
            crate::runner::env::remove_stale_temp(&std::env::temp_dir(), kind);
        }
        Box::new(LocalFactory {
            keep: plan.opts.keep,
        })
    };
    let outcomes = runner::run_all(
        &selected,
        &all,
        &config,
        factory.as_ref(),
        &supervisor,
        &console,
    );
    handle.close();
    if host::is_root() {
        crate::sandbox::cgroup::remove_parent_if_unused();
    } else {
        crate::runner::process::stop_orphans();
    }
    console.summary(&outcomes);
    if let Err(e) = crate::site::status::Store::record(&ws.status_path(), &outcomes, &all) {
        eprintln!("recipes: cannot record the results for the site: {e}");
    }
    if plan.opts.bless {
        let blessed: Vec<_> = outcomes.iter().flat_map(|o| o.blessed.clone()).collect();
        for path in crate::workflow::apply_blessings(&ws.book_dir, &blessed)? {
            println!("blessed {}", path.display());
        }
    }
    if let Some(path) = &plan.opts.junit {
        report::write_junit(path, &outcomes)
            .with_context(|| format!("cannot write the JUnit report {}", path.display()))?;
    }
    Ok(exit_code(&outcomes, supervisor.interrupted()))
}

fn exit_code(outcomes: &[Outcome], interrupted: bool) -> i32 {
    if interrupted || outcomes.iter().any(|o| o.status == Status::Interrupted) {
        exit::INTERRUPTED
    } else if outcomes
        .iter()
        .any(|o| matches!(o.status, Status::Error(_)))
    {
        exit::ERROR
    } else if outcomes
        .iter()
        .any(|o| matches!(o.status, Status::Failed | Status::TimedOut))
    {
        exit::FAILED
    } else {
        exit::OK
    }
}

/// ", did you mean `a` or `b`?" for the closest names, or nothing.
fn suggest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    let mut scored: Vec<(f64, &str)> = candidates
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.75)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let names: Vec<String> = scored
        .iter()
        .take(3)
        .map(|(_, c)| format!("`{c}`"))
        .collect();
    if names.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", names.join(" or "))
    }
}

fn fixture(ws: &Workspace, command: FixtureCommand) -> anyhow::Result<i32> {
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
            let installer = Installer::new(true);
            let install = |needs: &[(&str, &str)]| installer.ensure(needs);
            let rootfs = store.ensure(&name, &install)?;
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

/// The line a TOML error message points at ("... at line 3, column 1"), or 1.
fn toml_error_line(message: &str) -> usize {
    message
        .split("line ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}
