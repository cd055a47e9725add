//! The command edge: one module per command loads what it needs through the
//! [`Workspace`], calls the library, prints, and returns the exit code.
//! This file only dispatches. anyhow lives here and in `main.rs`.

mod check;
mod fixture;
mod list;
mod run;

use anyhow::bail;

use crate::cli::{BookCommand, Cli, Command, RunSettings};
use crate::exit;
use crate::parse::Problem;
use crate::workspace::Workspace;

pub fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let ws = Workspace::new(&cli.book);
    if matches!(
        cli.command,
        Command::List { .. } | Command::Check | Command::Fixture { .. }
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
        Command::List { format } => list::list(&ws, &cli.lang, format),
        Command::Check => check::check(&ws),
        Command::Run { ids, opts } => {
            let settings = RunSettings::new(opts, None, None)?;
            run::run(&ws, &cli.lang, run::Asked::Ids(ids), settings)
        }
        Command::Test {
            jobs,
            partition,
            changed,
            opts,
        } => {
            let settings = RunSettings::new(opts, jobs, partition.as_deref())?;
            let asked = if changed {
                run::Asked::Changed
            } else {
                run::Asked::All
            };
            run::run(&ws, &cli.lang, asked, settings)
        }
        Command::Book { command } => match command {
            BookCommand::Build { out } => {
                crate::site::build(&ws.book_dir, &out, &ws.status_path())?;
                println!(
                    "built {} (English: {})",
                    out.display(),
                    out.join("en").display()
                );
                Ok(exit::OK)
            }
            BookCommand::Serve { port, out } => {
                crate::site::serve(&ws.book_dir, &out, &ws.status_path(), port)
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
        Command::Fixture { command } => fixture::fixture(&ws, command),
        Command::Session => Ok(crate::session::session_main()),
        Command::Sandbox { spec } => Ok(crate::sandbox::helper::sandbox_main(&spec)),
        Command::Enter {
            pid,
            start,
            cgroup,
            net_host,
            cwd,
            chroot,
            argv,
        } => Ok(crate::sandbox::helper::enter_main(
            &crate::sandbox::helper::EnterRequest {
                pid,
                start,
                cgroups: &cgroup,
                net_host,
                cwd: &cwd,
                chroot: chroot.as_deref(),
                argv: &argv,
            },
        )),
    }
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
