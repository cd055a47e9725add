//! The command line: clap derive types, then their validation into
//! [`RunSettings`] before any side effect. (What a run will do, recipe by
//! recipe, is the [`crate::plan::Plan`], made from these settings and the
//! book.)

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::plan::Partition;
use crate::report::Format;

#[derive(Debug, Parser)]
#[command(
    name = "recipes",
    version = env!("RECIPES_VERSION"),
    about = "Runs the executable recipes of the LXC book in throwaway rootfs sandboxes"
)]
pub struct Cli {
    /// The book folder, holding one folder per language.
    #[arg(long, global = true, default_value = "book", value_name = "DIR")]
    pub book: PathBuf,
    /// The book language to list or run.
    #[arg(long, global = true, default_value = "fr", value_name = "LANG")]
    pub lang: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the recipes of the book.
    List {
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Check the book (both languages) and report every problem.
    Check {
        /// `human` (path:line: message), `json` (a list of {path, line,
        /// message}) or `github` (workflow annotations).
        #[arg(long, value_enum, default_value = "human")]
        format: CheckFormat,
    },
    /// Check everything the runner needs of this host (root, namespaces,
    /// idmapped mounts, cgroups, kernel features, packages, disk) and say
    /// how to fix what is missing; exit 2 if something is.
    Doctor {
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Check the host described in FILE (as `--describe` prints it)
        /// instead of this one.
        #[arg(long, value_name = "FILE")]
        host: Option<PathBuf>,
        /// Print the description of the host (JSON) instead of checking it.
        #[arg(long)]
        describe: bool,
    },
    /// Run the named recipes.
    Run {
        /// Recipe ids.
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
        #[command(flatten)]
        opts: RunOpts,
    },
    /// Open a shell in a recipe's sandbox, in the state just before the
    /// step at LINE of its page (after its last step without LINE); with a
    /// stdin that is not a terminal, read commands from it.
    Shell {
        /// `ID` or `ID:LINE` (the line of a step's opening fence).
        #[arg(value_name = "ID[:LINE]")]
        target: String,
        #[command(flatten)]
        opts: RunOpts,
    },
    /// Run every recipe of the book.
    Test {
        /// Recipes run in parallel (default: four per CPU, one per GiB of
        /// available memory at most); the longest, as last measured, start
        /// first and weigh most on the processors.
        #[arg(long, short = 'j', value_name = "N")]
        jobs: Option<usize>,
        /// Run only the K-th of N deterministic shares of the recipes.
        #[arg(long, value_name = "K/N")]
        partition: Option<String>,
        /// Run only the recipes of pages changed since the merge base with
        /// the main branch (and the recipes that need them).
        #[arg(long)]
        changed: bool,
        #[command(flatten)]
        opts: RunOpts,
    },
    /// Manage the status store the site reads.
    Status {
        #[command(subcommand)]
        command: StatusCommand,
    },
    /// Build or serve the bilingual site.
    Book {
        #[command(subcommand)]
        command: BookCommand,
    },
    /// Scaffold a new page in both languages, with a first recipe.
    New {
        /// The new recipe's id (also the page's file name).
        id: String,
        #[arg(long, value_name = "TITLE")]
        title_fr: String,
        #[arg(long, value_name = "TITLE")]
        title_en: String,
    },
    /// Print a shell completion script (e.g. `recipes completions bash >
    /// ~/.local/share/bash-completion/completions/recipes`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout (`recipes man | man -l -`).
    Man,
    /// Hidden: the mdBook preprocessor (`recipes mdbook [supports RENDERER]`).
    #[command(name = "mdbook", hide = true)]
    Mdbook { args: Vec<String> },
    /// Manage the cached base root filesystems.
    Fixture {
        #[command(subcommand)]
        command: FixtureCommand,
    },
    /// Hidden: the sandbox's PID 1 (re-exec'd by the runner).
    #[command(name = "__sandbox", hide = true)]
    Sandbox {
        #[arg(long)]
        spec: String,
        /// Its end of the runner's socket pair: it forks the steps.
        #[arg(long)]
        spawner: Option<i32>,
    },
    /// Hidden: play a terminal session read on stdin (run as a step).
    #[command(name = "__session", hide = true)]
    Session,
    /// Hidden: run a program inside a running sandbox.
    #[command(name = "__enter", hide = true)]
    Enter {
        #[arg(long)]
        pid: i32,
        /// PID 1's start time, so a reused pid is never joined.
        #[arg(long)]
        start: u64,
        /// A control group folder to join (repeated).
        #[arg(long)]
        cgroup: Vec<PathBuf>,
        /// The sandbox shares the host's network.
        #[arg(long)]
        net_host: bool,
        #[arg(long)]
        cwd: PathBuf,
        #[arg(long)]
        chroot: Option<PathBuf>,
        /// Keep set-user-ID programs working (no `no_new_privs`; the
        /// seccomp filter stays): a booted host's own setuid helpers.
        #[arg(long)]
        allow_setuid: bool,
        /// The runner's end of the helper's socket pair: ask the helper.
        #[arg(long)]
        spawner: Option<i32>,
        #[arg(last = true, required = true)]
        argv: Vec<std::ffi::OsString>,
    },
}

#[derive(Debug, Subcommand)]
pub enum BookCommand {
    /// Build the site: French at OUT/, English at OUT/en/.
    Build {
        #[arg(long, default_value = "target/site", value_name = "DIR")]
        out: PathBuf,
    },
    /// Serve the site on localhost and rebuild it when the book changes.
    Serve {
        #[arg(long, default_value_t = 3000)]
        port: u16,
        #[arg(long, default_value = "target/site", value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum StatusCommand {
    /// Merge status stores (from the partitions of one run) into the
    /// store the site reads, keeping the newest result per (id, fixture).
    Merge {
        /// The stores to merge.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// The store to merge into (default: the project's, which the site
        /// reads).
        #[arg(long, value_name = "FILE")]
        into: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum FixtureCommand {
    /// List the fixtures, their cached bases and the checkpoints of the
    /// book's chains.
    List,
    /// Build (or rebuild if stale) a fixture's base.
    Build {
        name: String,
        /// `json`: the build's events, one JSON object per line (as `run
        /// --format json` prints them).
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Remove cached bases and checkpoints (all, one fixture's, or the
    /// stale ones).
    Clean {
        name: Option<String>,
        /// Remove only what this book, with this build of recipes, no longer
        /// uses: bases of older definitions, checkpoints of chains, fixtures
        /// or builds that changed (other checkouts sharing the cache lose
        /// theirs).
        #[arg(long, conflicts_with = "name")]
        stale: bool,
    },
}

/// Output formats of `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckFormat {
    Human,
    Json,
    /// `::error file=…,line=…::message`, one per problem, for GitHub.
    Github,
}

#[derive(Debug, Args, Clone)]
pub struct RunOpts {
    /// Keep each recipe's fixture and print where it is.
    #[arg(long)]
    pub keep: bool,
    /// Run on this fixture instead of the one each recipe declares;
    /// repeated, each recipe runs on each (a matrix).
    #[arg(long, value_name = "NAME")]
    pub fixture: Vec<String>,
    /// Run each recipe's steps in the booted host fixture NAME (as if it
    /// said `host=NAME`); repeated, each recipe runs in each (a matrix).
    #[arg(long, value_name = "NAME")]
    pub host: Vec<String>,
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Also write a JUnit XML report to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Default timeout of a step without `timeout=`.
    #[arg(long, default_value = "5m", value_name = "DURATION")]
    pub timeout: String,
    /// Fail, instead of skipping, recipes whose requirements are unmet.
    #[arg(long)]
    pub require_all: bool,
    /// Never install missing host packages; stop with an error instead.
    #[arg(long)]
    pub no_install: bool,
    /// Show every step's output and time, also when it passes.
    #[arg(long, short = 'v', conflicts_with = "quiet")]
    pub verbose: bool,
    /// Print only failures and the summary.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Rewrite the expected output of failing `expect` blocks and
    /// transcripts in place, in both languages (refused when CI is set).
    #[arg(long)]
    pub bless: bool,
    /// Print the plan (what would run, after what, on which fixture, with
    /// which host commands) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Replay every `needs` chain instead of starting from its checkpoint.
    #[arg(long)]
    pub no_checkpoint: bool,
    /// Open a shell in the sandbox of a recipe that fails, in the state its
    /// failing step left (runs one recipe at a time).
    #[arg(long)]
    pub shell_on_fail: bool,
    /// Run each selected recipe N times, each time in a fresh sandbox; the
    /// summary names those that passed only some of their attempts (flaky).
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
}

/// Errors in the command line that clap cannot see.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("invalid --timeout `{0}` (use a duration like 90s, 5m or 500ms)")]
    Timeout(String),
    #[error("invalid --partition `{0}` (use K/N with 1 <= K <= N, like 2/4)")]
    Partition(String),
    #[error("--jobs must be at least 1")]
    Jobs,
}

/// Recipes mostly wait (boots, halts, leases): four per processor keep the
/// processors busy while the longest runs (measured in
/// `bench/book-time.sh`); each may hold a rootfs in memory, so no more than
/// one per GiB available.
pub fn default_jobs(cpus: usize, mem_available: Option<u64>) -> usize {
    let by_memory = mem_available.map_or(usize::MAX, |bytes| (bytes >> 30) as usize);
    (cpus * 4).min(by_memory).max(1)
}

/// Validated options of `run` and `test`.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub opts: RunOpts,
    pub timeout: Duration,
    pub jobs: usize,
    pub partition: Option<Partition>,
    /// Where a shell opens in the recipe's sandbox, if one does.
    pub shell: Option<crate::runner::ShellAt>,
}

impl RunSettings {
    pub fn new(
        opts: RunOpts,
        jobs: Option<usize>,
        partition: Option<&str>,
    ) -> Result<RunSettings, UsageError> {
        let timeout = crate::duration::parse(&opts.timeout)
            .ok_or_else(|| UsageError::Timeout(opts.timeout.clone()))?;
        let jobs = match jobs {
            Some(0) => return Err(UsageError::Jobs),
            Some(n) => n,
            None => default_jobs(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
                crate::host::mem_available(),
            ),
        };
        let partition = partition
            .map(|p| p.parse().map_err(|_| UsageError::Partition(p.to_string())))
            .transpose()?;
        let shell = opts
            .shell_on_fail
            .then_some(crate::runner::ShellAt::Failure);
        Ok(RunSettings {
            // One shell at a time on the terminal.
            jobs: if shell.is_some() { 1 } else { jobs },
            opts,
            timeout,
            partition,
            shell,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::default_jobs;

    #[test]
    fn default_jobs_are_four_per_cpu_and_one_per_gib_at_most() {
        const GIB: u64 = 1 << 30;
        assert_eq!(default_jobs(2, Some(22 * GIB)), 8);
        assert_eq!(default_jobs(2, Some(3 * GIB + GIB / 2)), 3);
        assert_eq!(default_jobs(16, None), 64);
        // Never none, however little memory.
        assert_eq!(default_jobs(2, Some(GIB / 2)), 1);
        assert_eq!(default_jobs(1, Some(0)), 1);
    }
}
