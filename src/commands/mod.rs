//! The command edge: one module per command loads what it needs through the
//! [`Workspace`], calls the library, prints, and returns the exit code.
//! This file only dispatches. anyhow lives here and in `main.rs`.

mod check;
mod doctor;
mod fixture;
mod list;
mod run;

use std::path::PathBuf;

use anyhow::bail;

use crate::cli::{BookCommand, Cli, Command, RunOpts, RunSettings, StatusCommand};
use crate::exit;
use crate::parse::Problem;
use crate::workspace::Workspace;

/// Runs the parsed command line and returns the exit code.
pub fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let ws = Workspace::new(&cli.book);
    if only_prints(&cli.command) {
        restore_sigpipe();
    }
    match cli.command {
        Command::List { format } => list::list(&ws, &cli.lang, format),
        Command::Check { format } => check::check(&ws, format),
        Command::Doctor {
            format,
            host,
            describe,
        } => doctor::doctor(format, host.as_deref(), describe),
        Command::Run { ids, opts } => {
            let settings = RunSettings::new(opts, None, None)?;
            run::run(&ws, &cli.lang, run::Asked::Ids(ids), settings)
        }
        Command::Shell { target, opts } => shell(&ws, &cli.lang, target, opts),
        Command::Test {
            jobs,
            partition,
            changed,
            opts,
        } => test(&ws, &cli.lang, jobs, partition.as_deref(), changed, opts),
        Command::Status {
            command: StatusCommand::Merge { files, into },
        } => merge_status(&ws, &files, into),
        Command::Book { command } => book(&ws, command),
        Command::New {
            id,
            title_fr,
            title_en,
        } => new_page(&ws, &id, title_fr, title_en),
        Command::Mdbook { args } => mdbook(&args),
        Command::Fixture { command } => fixture::fixture(&ws, &cli.lang, command),
        Command::Completions { shell } => completions(shell),
        Command::Man => man(),
        Command::Session => Ok(crate::session::session_main()),
        Command::Sandbox { spec, spawner } => {
            Ok(crate::sandbox::helper::sandbox_main(&spec, spawner))
        }
        Command::Enter {
            pid,
            start,
            cgroup,
            net_host,
            cwd,
            chroot,
            allow_setuid,
            spawner,
            argv,
        } => Ok(crate::sandbox::helper::enter_main(
            &crate::sandbox::helper::EnterRequest {
                pid,
                start,
                cgroups: &cgroup,
                net_host,
                cwd: &cwd,
                chroot: chroot.as_deref(),
                allow_setuid,
                argv: &argv,
                spawner,
            },
        )),
    }
}

/// Whether the command only prints, so that it may die quietly when its
/// reader goes away (`recipes list | head`), as Unix tools do. Commands that
/// run steps keep SIGPIPE ignored: a step closing its stdin must not kill
/// the runner.
fn only_prints(command: &Command) -> bool {
    matches!(
        command,
        Command::List { .. }
            | Command::Check { .. }
            | Command::Doctor { .. }
            | Command::Fixture { .. }
            | Command::Completions { .. }
            | Command::Man
    )
}

/// Lets SIGPIPE end the process again, as it does by default.
fn restore_sigpipe() {
    // SAFETY: restoring the default disposition installs no handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// `recipes shell ID[:LINE]`: runs one recipe and opens a shell at its end,
/// or before the step at LINE.
fn shell(ws: &Workspace, lang: &str, target: String, opts: RunOpts) -> anyhow::Result<i32> {
    let (id, line) = match target.rsplit_once(':') {
        Some((id, line)) => match line.parse::<usize>() {
            Ok(line) => (id.to_string(), Some(line)),
            Err(_) => bail!("`{target}`: use ID or ID:LINE (a line number)"),
        },
        None => (target, None),
    };
    let mut settings = RunSettings::new(opts, Some(1), None)?;
    settings.shell = Some(match line {
        Some(line) => crate::runner::ShellAt::Before(line),
        None => crate::runner::ShellAt::End,
    });
    run::run(ws, lang, run::Asked::Ids(vec![id]), settings)
}

/// `recipes test`: every recipe, or only the changed ones, on `jobs`
/// workers and within one partition.
fn test(
    ws: &Workspace,
    lang: &str,
    jobs: Option<usize>,
    partition: Option<&str>,
    changed: bool,
    opts: RunOpts,
) -> anyhow::Result<i32> {
    let settings = RunSettings::new(opts, jobs, partition)?;
    let asked = if changed {
        run::Asked::Changed
    } else {
        run::Asked::All
    };
    run::run(ws, lang, asked, settings)
}

/// `recipes status merge`: folds status stores into one; on failure nothing
/// is written.
fn merge_status(ws: &Workspace, files: &[PathBuf], into: Option<PathBuf>) -> anyhow::Result<i32> {
    let into = into.unwrap_or_else(|| ws.status_path());
    match crate::status::Store::merge(files, &into) {
        Ok(n) => {
            println!(
                "merged {} into {} ({})",
                count(files.len(), "store"),
                into.display(),
                count(n, "result")
            );
            Ok(exit::OK)
        }
        Err(e) => {
            eprintln!("error: {e}; nothing was written");
            Ok(exit::ERROR)
        }
    }
}

/// `recipes book build|serve`: the mdBook site, with mdBook's own
/// diagnostics counted.
fn book(ws: &Workspace, command: BookCommand) -> anyhow::Result<i32> {
    match command {
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
                        "error: mdBook reported {} (above); `recipes check` shows where",
                        count(n, "error")
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
    }
}

/// `recipes new`: scaffolds a page in both languages.
fn new_page(ws: &Workspace, id: &str, title_fr: String, title_en: String) -> anyhow::Result<i32> {
    let titles = [("fr".to_string(), title_fr), ("en".to_string(), title_en)]
        .into_iter()
        .collect();
    for path in crate::workflow::new_page(&ws.book_dir, id, &titles)? {
        println!("wrote {}", path.display());
    }
    println!("next: edit the pages, then `recipes run {id}` until it passes");
    Ok(exit::OK)
}

/// The hidden `recipes mdbook` preprocessor entry, as mdBook calls it.
fn mdbook(args: &[String]) -> anyhow::Result<i32> {
    match args {
        [] => Ok(crate::site::mdbook_command(None)?),
        [verb, renderer] if verb == "supports" => Ok(crate::site::mdbook_command(Some(renderer))?),
        _ => bail!("usage: recipes mdbook [supports RENDERER]"),
    }
}

/// `recipes completions SHELL`: the completion script, on stdout.
fn completions(shell: clap_complete::Shell) -> anyhow::Result<i32> {
    clap_complete::generate(shell, &mut public_cli(), "recipes", &mut std::io::stdout());
    Ok(exit::OK)
}

/// `recipes man`: the manual page, on stdout.
fn man() -> anyhow::Result<i32> {
    let cli = <Cli as clap::CommandFactory>::command();
    clap_mangen::Man::new(cli).render(&mut std::io::stdout())?;
    Ok(exit::OK)
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

/// Prints problems sorted by place, as `path:line: message`.
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

/// `1 recipe`, `2 recipes`.
fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}
