//! The domain model shared by every module: a book's pages and recipes, their
//! steps and locations, and how recipes relate through `needs`. Pure data;
//! nothing here touches the filesystem or starts a process. What running
//! produces is in [`crate::outcome`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A place in the book: the page as the user names it and a 1-based line.
/// The path is shared by every place on one page.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    pub path: Arc<Path>,
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)
    }
}

/// One language tree of the book (`book/fr`, `book/en`).
#[derive(Debug, Clone)]
pub struct Book {
    pub lang: String,
    /// The language's root folder (`book/fr`).
    pub root: PathBuf,
    /// The pages' folder (`book/fr/src` unless `book.toml` says otherwise).
    pub src: PathBuf,
    pub pages: Vec<Page>,
}

/// A Markdown page listed in `SUMMARY.md`.
#[derive(Debug, Clone)]
pub struct Page {
    /// Relative to the language's `src/`, with `/` separators.
    pub rel: String,
    /// The path as shown in messages (`book/fr/src/intro.md`).
    pub path: PathBuf,
    pub recipes: Vec<Recipe>,
}

/// A step's attributes, by the grammar's own spelling of each key.
pub type Attrs = BTreeMap<&'static str, AttrValue>;

/// The value of one info-string attribute: `key=value` or a bare flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AttrValue {
    Value(String),
    Flag(bool),
}

impl AttrValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::Value(v) => Some(v),
            AttrValue::Flag(_) => None,
        }
    }
}

/// What a step does, derived from its syntax word and attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    Script,
    Console,
    Rust,
    File,
    Check,
    Expect,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Script => "script",
            StepKind::Console => "console",
            StepKind::Rust => "rust",
            StepKind::File => "file",
            StepKind::Check => "check",
            StepKind::Expect => "expect",
        }
    }
}

/// Where a step runs inside the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Where {
    #[default]
    Host,
    Chroot,
}

/// The exit status a step must end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedExit {
    Code(i32),
    Any,
}

impl Default for ExpectedExit {
    fn default() -> Self {
        ExpectedExit::Code(0)
    }
}

/// One command of a console transcript and the output it must print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptEntry {
    /// 1-based line of the `$ ` line in the page.
    pub line: usize,
    pub command: String,
    pub expected: Vec<String>,
    pub exit: i32,
}

/// A terminal session: a `console` block with the flag `pty` (DESIGN §8).
/// Its program runs under a pseudo-terminal and is driven line by line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// 1-based line of the `$ ` line that starts the program.
    pub line: usize,
    /// The command line that starts the program (run by a shell).
    pub command: String,
    /// The program's prompt (`prompt=`), a regular expression.
    pub prompt: Option<String>,
    /// What happens after the start, in order.
    pub lines: Vec<SessionLine>,
    /// The program's exit code, when a last line `[N]` gives it: the
    /// session then waits for the program to end. Without it a program
    /// still running at the end is hung up, like a closed terminal window;
    /// one that ended by itself must have ended with 0.
    pub exit: Option<i32>,
}

/// One line of a session after its `$ ` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionLine {
    /// 1-based line in the page.
    pub line: usize,
    /// The line as written.
    pub text: String,
    pub action: SessionAction,
}

/// What a session line does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionAction {
    /// A line of output to await (a pattern, as in transcripts).
    Expect,
    /// Await the prompt, then send the bytes (what follows the prompt on
    /// the line, its keys translated, then Enter unless it ends with a key).
    Prompt { input: Vec<u8> },
    /// Send keys (a line made only of `<...>` keys).
    Keys { input: Vec<u8> },
}

/// What a step does, with what only that kind of step has. Each variant
/// has its own file in `src/runner/kinds/`: the program that runs it and
/// the verdict on what it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A `sh` or `bash` block (or, once reported, one of an unknown syntax):
    /// the body run by that shell, which must end with `exit`.
    Script { exit: ExpectedExit },
    /// A `console` block: its commands, run in one shell, each with the
    /// output and exit code it must end with.
    Transcript(Vec<TranscriptEntry>),
    /// A `console` block with the flag `pty`: a program driven under a
    /// pseudo-terminal.
    Session(Session),
    /// A `rust` block: a complete program, which must end with `exit`.
    Rust { exit: ExpectedExit },
    /// A block with `file=PATH`: its body written to `path` (`$ROOTFS/`
    /// kept verbatim), then given `mode`.
    WriteFile { path: String, mode: Option<u32> },
    /// A block with `file=PATH check`: the file at `path` must read as the
    /// body.
    CheckFile { path: String },
    /// An `expect` block: the output of the step before it.
    Expect,
}

impl Action {
    /// The kind reports and `list` name.
    pub fn kind(&self) -> StepKind {
        match self {
            Action::Script { .. } => StepKind::Script,
            Action::Transcript(_) | Action::Session(_) => StepKind::Console,
            Action::Rust { .. } => StepKind::Rust,
            Action::WriteFile { .. } => StepKind::File,
            Action::CheckFile { .. } => StepKind::Check,
            Action::Expect => StepKind::Expect,
        }
    }
}

/// A fenced block that takes part in a recipe.
#[derive(Debug, Clone)]
pub struct Step {
    pub location: Location,
    /// The info string's first word.
    pub syntax: String,
    /// Every other key of the info string, flags mapped to `true`.
    pub attrs: Attrs,
    /// The block's body with `\n` line endings.
    pub body: String,
    pub where_: Where,
    pub timeout: Option<Duration>,
    pub action: Action,
}

impl Step {
    /// Whether the step has the bare flag `name`.
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.attrs.get(name), Some(AttrValue::Flag(true)))
    }

    /// What the step does, as reports name it.
    pub fn kind(&self) -> StepKind {
        self.action.kind()
    }

    /// The commands of a transcript; none for any other step.
    pub fn transcript(&self) -> &[TranscriptEntry] {
        match &self.action {
            Action::Transcript(entries) => entries,
            _ => &[],
        }
    }
}

/// What a recipe needs from the machine to run (`requires=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Requirement {
    Root,
    Lxc,
    Net,
    /// A feature of the host's kernel (`requires=dummy`).
    Kernel(KernelFeature),
}

impl Requirement {
    /// Every word `requires=` accepts, in the order the grammar lists them.
    pub const WORDS: [&'static str; 8] = [
        "root",
        "lxc",
        "net",
        KernelFeature::ALL[0].as_str(),
        KernelFeature::ALL[1].as_str(),
        KernelFeature::ALL[2].as_str(),
        KernelFeature::ALL[3].as_str(),
        KernelFeature::ALL[4].as_str(),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Requirement::Root => "root",
            Requirement::Lxc => "lxc",
            Requirement::Net => "net",
            Requirement::Kernel(feature) => feature.as_str(),
        }
    }

    /// The requirement a `requires=` word names.
    pub fn from_word(word: &str) -> Option<Requirement> {
        match word {
            "root" => Some(Requirement::Root),
            "lxc" => Some(Requirement::Lxc),
            "net" => Some(Requirement::Net),
            _ => KernelFeature::ALL
                .into_iter()
                .find(|f| f.as_str() == word)
                .map(Requirement::Kernel),
        }
    }
}

/// Serialized as its `requires=` word (`"root"`, `"dummy"`).
impl Serialize for Requirement {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A kernel feature the book's recipes use, which a recipe may require
/// (`requires=dummy`) to be skipped, with the reason, on a kernel without
/// it. Each is a kernel module of the same name, built in or loadable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KernelFeature {
    Veth,
    Bridge,
    Dummy,
    NfTables,
    Fuse,
}

impl KernelFeature {
    pub const ALL: [KernelFeature; 5] = [
        KernelFeature::Veth,
        KernelFeature::Bridge,
        KernelFeature::Dummy,
        KernelFeature::NfTables,
        KernelFeature::Fuse,
    ];

    /// The `requires=` word, which is also the kernel module's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            KernelFeature::Veth => "veth",
            KernelFeature::Bridge => "bridge",
            KernelFeature::Dummy => "dummy",
            KernelFeature::NfTables => "nf_tables",
            KernelFeature::Fuse => "fuse",
        }
    }

    /// What the feature is, as a sentence names it ("the `dummy` link type").
    pub fn what(self) -> &'static str {
        match self {
            KernelFeature::Veth => "`veth` link type",
            KernelFeature::Bridge => "`bridge` link type",
            KernelFeature::Dummy => "`dummy` link type",
            KernelFeature::NfTables => "nf_tables (the firewall `nft` configures)",
            KernelFeature::Fuse => "FUSE (user-space file systems, lxcfs)",
        }
    }

    /// Why a recipe that requires it is skipped on a kernel without it.
    pub fn absent(self) -> String {
        format!("this kernel has no {}", self.what())
    }
}

/// A recipe: every step with one id, in document order.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub id: String,
    pub lang: String,
    /// The page, relative to `src/`.
    pub page: String,
    pub location: Location,
    pub fixture: String,
    pub at: Option<String>,
    /// The booted host fixture its steps run in (`host=NAME`).
    pub host: Option<String>,
    pub needs: Option<String>,
    pub net_host: bool,
    pub requires: Vec<Requirement>,
    /// The sandbox's process limit (`pids=`), when not the default.
    pub pids: Option<u64>,
    /// The sandbox's memory limit in bytes, tmpfs included (`memory=`).
    pub memory: Option<u64>,
    pub steps: Vec<Step>,
}

impl Recipe {
    /// Steps that are followed by an `expect` block capture their output for it.
    pub fn expect_for(&self, index: usize) -> Option<&Step> {
        self.steps
            .get(index + 1)
            .filter(|s| matches!(s.action, Action::Expect))
    }
}

/// The `PATH` steps (and fixture setup scripts) run with, and where the
/// host's commands are looked for.
pub const STEP_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The default fixture: a fresh empty directory.
pub const EMPTY_FIXTURE: &str = "empty";

/// Recipes by id (the first one, when a broken book has two).
pub type RecipeIndex<'a> = BTreeMap<&'a str, &'a Recipe>;

/// Indexes recipes by id, keeping the first of a duplicated id.
pub fn index<'a>(recipes: impl IntoIterator<Item = &'a Recipe>) -> RecipeIndex<'a> {
    let mut index = RecipeIndex::new();
    for recipe in recipes {
        index.entry(recipe.id.as_str()).or_insert(recipe);
    }
    index
}

/// A recipe and the recipes it needs, deepest first (a cycle, which
/// `check` reports, is cut where it closes).
pub fn chain<'a>(recipe: &'a Recipe, all: &RecipeIndex<'a>) -> Vec<&'a Recipe> {
    let mut chain = vec![recipe];
    let mut current = recipe;
    while let Some(next) = current.needs.as_deref().and_then(|id| all.get(id).copied()) {
        if chain.iter().any(|r| r.id == next.id) {
            break;
        }
        chain.push(next);
        current = next;
    }
    chain.reverse();
    chain
}

/// The fixture a chain runs on: the recipe's own, or else the one a recipe
/// it needs declares.
pub fn declared_fixture<'a>(chain: &[&'a Recipe]) -> &'a str {
    chain
        .iter()
        .rev()
        .map(|r| r.fixture.as_str())
        .find(|f| *f != EMPTY_FIXTURE)
        .unwrap_or(EMPTY_FIXTURE)
}

/// The key of a result in the status store: the fixture, and `@HOST` when
/// its steps ran in a booted host (`host=`, `--host`).
pub fn result_key(fixture: &str, host: Option<&str>) -> String {
    match host {
        Some(host) => format!("{fixture}@{host}"),
        None => fixture.to_string(),
    }
}

/// The booted host a chain's steps run in, as its recipes declare it.
pub fn declared_host<'a>(chain: &[&'a Recipe]) -> Option<&'a str> {
    chain.iter().rev().find_map(|r| r.host.as_deref())
}

/// Per-sandbox limits (`pids=`, `memory=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Processes and threads (`pids.max`).
    pub pids: u64,
    /// Bytes of memory, tmpfs scratch included (`memory.max`).
    pub memory: u64,
}

/// A sandbox's weight when the processors are busy, on cgroup v2's scale
/// (`cpu.weight`, 1 to 10000): the default, for a sandbox that runs alone
/// or the longest of a run.
pub const CPU_WEIGHT: u16 = 100;

impl Limits {
    pub const DEFAULT: Limits = Limits {
        pids: 2048,
        memory: 4 << 30,
    };

    /// The limits of a chain: the highest any of its recipes asks for, or
    /// the defaults.
    pub fn of_chain(chain: &[&Recipe]) -> Limits {
        let mut limits = Limits::DEFAULT;
        if let Some(pids) = chain.iter().filter_map(|r| r.pids).max() {
            limits.pids = pids;
        }
        if let Some(memory) = chain.iter().filter_map(|r| r.memory).max() {
            limits.memory = memory;
        }
        limits
    }
}

/// `4G`, `512M`, `4096`: a size in bytes (powers of 1024).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let n: u64 = digits.parse().ok()?;
    let shift = match unit.trim_end_matches(['i', 'B']) {
        "" => 0,
        "K" | "k" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return None,
    };
    n.checked_mul(1 << shift).filter(|n| *n > 0)
}

/// The shortest exact form of a size (`4G`, `1536M`).
pub fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_and_print_in_powers_of_1024() {
        assert_eq!(parse_size("4G"), Some(4 << 30));
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("4X"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(format_size(4 << 30), "4G");
        assert_eq!(format_size(1536 << 20), "1536M");
        assert_eq!(format_size(1000), "1000");
    }
}
