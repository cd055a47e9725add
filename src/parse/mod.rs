//! Markdown → recipes: the step grammar (DESIGN §4). A page's fenced
//! blocks become steps, grouped into recipes; problems are collected as
//! located [`Problem`]s so that one `check` reports all of them. Pure: the
//! text comes in, nothing is read or run here. Reading a language tree
//! (`book.toml`, `SUMMARY.md`, the pages in order) is in [`book`].

pub mod blocks;
pub mod book;
mod expected;
pub mod info;
pub mod session;
mod transcript;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::model::{
    Action, AttrValue, Attrs, ExpectedExit, Location, Recipe, Requirement, Step, StepKind, Where,
    EMPTY_FIXTURE,
};
use blocks::{fenced_blocks_with, Block, LineIndex, PageScan};
pub use book::{languages, load_book, load_book_with, summary_entries, BookError};
use info::{parse_info, valid_id, ID_KEY, RECIPE_KEYS};

/// A problem in the book, reported as `path:line: message`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    pub location: Location,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Parses one page's steps into recipes (grouped by id, in document order).
pub fn parse_page(path: &Path, rel: &str, lang: &str, text: &str) -> (Vec<Recipe>, Vec<Problem>) {
    let (recipes, problems, ()) = parse_page_with(path, rel, lang, text);
    (recipes, problems)
}

/// [`parse_page`], and what the reader `S` made of the same pass of the
/// Markdown parser.
pub fn parse_page_with<S: PageScan>(
    path: &Path,
    rel: &str,
    lang: &str,
    text: &str,
) -> (Vec<Recipe>, Vec<Problem>, S) {
    let (blocks, scan) = fenced_blocks_with::<S>(text, &LineIndex::new(text));
    let mut page = PageParser {
        // One path for every place on the page.
        path: Arc::from(path),
        rel,
        lang,
        recipes: Vec::new(),
        problems: Vec::new(),
    };
    for block in blocks {
        page.block(block);
    }
    for recipe in &page.recipes {
        page.problems.extend(expected::check_recipe(recipe));
    }
    (page.recipes, page.problems, scan)
}

/// The recipes of one page as its blocks are read, and the problems found.
struct PageParser<'a> {
    path: Arc<Path>,
    rel: &'a str,
    lang: &'a str,
    recipes: Vec<Recipe>,
    problems: Vec<Problem>,
}

impl PageParser<'_> {
    fn at(&self, line: usize) -> Location {
        Location {
            path: Arc::clone(&self.path),
            line,
        }
    }

    /// One fenced block: nothing unless its info string names a recipe,
    /// else a step of that recipe.
    fn block(&mut self, block: Block<'_>) {
        let Some((info, info_problems)) = parse_info(&block.info) else {
            return;
        };
        let location = self.at(block.line);
        let mut problems = Vec::new();
        let mut problem = |message: String| problems.push(message);
        for message in info_problems {
            problem(message);
        }
        let id = info.attrs[ID_KEY].as_str().unwrap_or_default();
        if valid_id(id) {
            let index = self.recipe_index(id, &location);
            let mut located = Vec::new();
            let step = build_step(
                location.clone(),
                info.syntax,
                info.attrs,
                block.body,
                &mut problem,
                &mut located,
            );
            let recipe = &mut self.recipes[index];
            expect_follows(recipe, &step, &mut problem);
            apply_recipe_keys(recipe, &step, &mut problem);
            recipe.steps.push(step);
            self.push(&location, problems);
            for (line, message) in located {
                let location = self.at(line);
                self.problems.push(Problem { location, message });
            }
        } else {
            problem(format!(
                "malformed recipe id `{id}`: use lowercase letters and digits in words joined by `-` (like `network-veth`)"
            ));
            self.push(&location, problems);
        }
    }

    fn push(&mut self, location: &Location, messages: Vec<String>) {
        self.problems
            .extend(messages.into_iter().map(|message| Problem {
                location: location.clone(),
                message,
            }));
    }

    /// The index of the recipe `id` on this page, a new one (starting at
    /// `location`) if it has no step yet.
    fn recipe_index(&mut self, id: &str, location: &Location) -> usize {
        if let Some(i) = self.recipes.iter().position(|r| r.id == id) {
            return i;
        }
        self.recipes.push(Recipe {
            id: id.to_string(),
            lang: self.lang.to_string(),
            page: self.rel.to_string(),
            location: location.clone(),
            fixture: EMPTY_FIXTURE.to_string(),
            at: None,
            host: None,
            needs: None,
            net_host: false,
            requires: Vec::new(),
            pids: None,
            memory: None,
            steps: Vec::new(),
        });
        self.recipes.len() - 1
    }
}

/// An `expect` block takes the output of the script or rust step before it.
fn expect_follows(recipe: &Recipe, step: &Step, problem: &mut impl FnMut(String)) {
    if step.kind() != StepKind::Expect {
        return;
    }
    let id = &recipe.id;
    match recipe.steps.last() {
        None => problem(format!(
            "`expect` block of recipe `{id}` has no step before it to take the output of"
        )),
        Some(prev) if !matches!(prev.kind(), StepKind::Script | StepKind::Rust) => problem(format!(
            "`expect` block of recipe `{id}` follows a {} step; it can only follow a script or a rust step",
            prev.kind().as_str()
        )),
        Some(_) => {}
    }
}

/// An `at=` path: absolute, normalised, not the root itself.
fn valid_at(value: &str) -> bool {
    let path = std::path::Path::new(value);
    path.is_absolute()
        && value != "/"
        && path.components().all(|c| {
            matches!(
                c,
                std::path::Component::RootDir | std::path::Component::Normal(_)
            )
        })
}

fn apply_recipe_keys(recipe: &mut Recipe, step: &Step, problem: &mut impl FnMut(String)) {
    let first = recipe.steps.is_empty();
    for &key in RECIPE_KEYS {
        let Some(value) = step.attrs.get(key).and_then(AttrValue::as_str) else {
            continue;
        };
        if !first {
            problem(format!(
                "`{key}` describes the whole recipe `{}`: put it on its first step (line {})",
                recipe.id, recipe.location.line
            ));
            continue;
        }
        match key {
            "fixture" => recipe.fixture = value.to_string(),
            "at" if valid_at(value) => recipe.at = Some(value.to_string()),
            "at" => problem(format!(
                "`at={value}` must be an absolute path below `/`, without `.` or `..`"
            )),
            "pids" => match value.parse::<u64>() {
                Ok(n) if (1..=1 << 22).contains(&n) => recipe.pids = Some(n),
                _ => problem(format!(
                    "`pids={value}` must be a number of processes (1 to 4194304)"
                )),
            },
            "memory" => match crate::model::parse_size(value) {
                Some(n) if n >= 16 << 20 => recipe.memory = Some(n),
                _ => problem(format!(
                    "`memory={value}` must be a size of at least 16M (`512M`, `4G`)"
                )),
            },
            "host" if valid_id(value) => recipe.host = Some(value.to_string()),
            "host" => problem(format!("malformed fixture name in `host={value}`")),
            "needs" if valid_id(value) => recipe.needs = Some(value.to_string()),
            "needs" => problem(format!("malformed recipe id in `needs={value}`")),
            "net" if value == "host" => recipe.net_host = true,
            "net" => problem(format!(
                "unknown network mode `net={value}` (only `net=host`)"
            )),
            "requires" => {
                for word in value.split('+') {
                    match Requirement::from_word(word) {
                        Some(requirement) => recipe.requires.push(requirement),
                        None => {
                            let (last, others) = Requirement::WORDS
                                .split_last()
                                .expect("requires= has words");
                            problem(format!(
                                "unknown requirement `{word}` (use {} or {last}, joined by `+`)",
                                others.join(", ")
                            ))
                        }
                    }
                }
                recipe.requires.sort();
                recipe.requires.dedup();
            }
            _ => unreachable!("`{key}` is in RECIPE_KEYS without a meaning"),
        }
    }
}

/// One block as a step: its kind, where it runs and what it expects, with a
/// problem for each attribute that does not fit. Session problems carry
/// their own lines and go to `located`.
fn build_step(
    location: Location,
    syntax: String,
    attrs: Attrs,
    body: String,
    problem: &mut impl FnMut(String),
    located: &mut Vec<(usize, String)>,
) -> Step {
    let value = |k: &str| attrs.get(k).and_then(AttrValue::as_str);
    let file = value("file").map(str::to_string);
    let kind = step_kind(&syntax, &attrs, file.is_some(), problem);
    let where_ = parse_where(value("where"), problem);
    let timeout = value("timeout").and_then(|t| parse_timeout(t, problem));
    let exit = parse_exit(value("exit"), problem);
    let mode = value("mode").and_then(|m| parse_mode(m, problem));
    check_file_keys(kind, mode.is_some(), file.as_deref(), problem);
    if kind == StepKind::Expect && (attrs.contains_key("exit") || attrs.contains_key("timeout")) {
        problem("`exit=` and `timeout=` go on the step before an `expect` block".into());
    }
    let session_step = is_session_step(kind, where_, &attrs, problem);
    let transcript = if kind == StepKind::Console && !session_step {
        transcript::parse(location.line, &body, problem)
    } else {
        Vec::new()
    };
    let session = if session_step {
        session::parse(location.line, &body, value("prompt"), &mut |line, m| {
            located.push((line, m))
        })
    } else {
        None
    };
    if kind == StepKind::Console && attrs.contains_key("exit") {
        problem(
            "a transcript gives each command's exit code as a last output line `[N]`, not `exit=`"
                .into(),
        );
    }
    // `file=` is what makes a `file` or `check` step, so it is set for
    // both; a session that did not parse (its problems are reported) is an
    // empty transcript.
    let action = match (kind, session) {
        (StepKind::Script, _) => Action::Script { exit },
        (StepKind::Rust, _) => Action::Rust { exit },
        (StepKind::Console, Some(session)) => Action::Session(session),
        (StepKind::Console, None) => Action::Transcript(transcript),
        (StepKind::File, _) => Action::WriteFile {
            path: file.unwrap_or_default(),
            mode,
        },
        (StepKind::Check, _) => Action::CheckFile {
            path: file.unwrap_or_default(),
        },
        (StepKind::Expect, _) => Action::Expect,
    };
    Step {
        location,
        syntax,
        attrs,
        body,
        where_,
        timeout,
        action,
    }
}

/// Whether the flag `key` is set on a block.
fn flag(attrs: &Attrs, key: &str) -> bool {
    matches!(attrs.get(key), Some(AttrValue::Flag(true)))
}

/// What a block does, from its syntax and its `expect`, `check` and
/// `file=` attributes; an unknown syntax counts as a script once reported.
fn step_kind(
    syntax: &str,
    attrs: &Attrs,
    has_file: bool,
    problem: &mut impl FnMut(String),
) -> StepKind {
    let check = flag(attrs, "check");
    if flag(attrs, "expect") {
        if has_file {
            problem("an `expect` block cannot also have `file=`".into());
        }
        return StepKind::Expect;
    }
    if has_file {
        return if check {
            StepKind::Check
        } else {
            StepKind::File
        };
    }
    if check {
        problem("the flag `check` needs `file=PATH` (the file to compare)".into());
    }
    match syntax {
        "sh" | "bash" => StepKind::Script,
        "console" => StepKind::Console,
        "rust" => StepKind::Rust,
        other => {
            problem(format!(
                "a `{other}` block in a recipe needs `file=PATH` (write a file), `file=PATH check` (compare one) or `expect` (expected output); scripts are `sh`, `bash`, `console` or `rust`"
            ));
            StepKind::Script
        }
    }
}

/// `where=`: the host unless it says `chroot`.
fn parse_where(value: Option<&str>, problem: &mut impl FnMut(String)) -> Where {
    match value {
        None | Some("host") => Where::Host,
        Some("chroot") => Where::Chroot,
        Some(other) => {
            problem(format!("unknown `where={other}` (use host or chroot)"));
            Where::Host
        }
    }
}

/// `timeout=`: a duration; none when it does not read as one.
fn parse_timeout(value: &str, problem: &mut impl FnMut(String)) -> Option<Duration> {
    let parsed = crate::duration::parse(value);
    if parsed.is_none() {
        problem(format!(
            "invalid `timeout={value}` (use a duration like 90s, 2m or 500ms)"
        ));
    }
    parsed
}

/// `exit=`: a code from 0 to 255 or `any`; the default when absent or
/// invalid.
fn parse_exit(value: Option<&str>, problem: &mut impl FnMut(String)) -> ExpectedExit {
    match value {
        None => ExpectedExit::default(),
        Some("any") => ExpectedExit::Any,
        Some(n) => match n.parse::<i32>() {
            Ok(code) if (0..=255).contains(&code) => ExpectedExit::Code(code),
            _ => {
                problem(format!(
                    "invalid `exit={n}` (use a code from 0 to 255, or any)"
                ));
                ExpectedExit::default()
            }
        },
    }
}

/// `mode=`: octal permissions up to 07777; none when invalid.
fn parse_mode(value: &str, problem: &mut impl FnMut(String)) -> Option<u32> {
    let parsed = u32::from_str_radix(value, 8).ok().filter(|m| *m <= 0o7777);
    if parsed.is_none() {
        problem(format!(
            "invalid `mode={value}` (use octal, like 0644 or 755)"
        ));
    }
    parsed
}

/// `mode=` only on a written file, and `file=` an absolute path or one
/// below `$ROOTFS/`.
fn check_file_keys(
    kind: StepKind,
    has_mode: bool,
    file: Option<&str>,
    problem: &mut impl FnMut(String),
) {
    if has_mode && kind != StepKind::File {
        problem("`mode=` only applies to a block with `file=PATH`".into());
    }
    if let Some(path) = file {
        let rest = path.strip_prefix("$ROOTFS").unwrap_or(path);
        if rest.contains('$') || !(path.starts_with('/') || path.starts_with("$ROOTFS/")) {
            problem(format!(
                "`file={path}` must be an absolute path or start with `$ROOTFS/` (the only variable expanded)"
            ));
        }
    }
}

/// Whether the block is a terminal session (a `console` block with the flag
/// `pty`), reporting `pty`, `prompt=` and `where=chroot` where they do not
/// fit.
fn is_session_step(
    kind: StepKind,
    where_: Where,
    attrs: &Attrs,
    problem: &mut impl FnMut(String),
) -> bool {
    let pty = flag(attrs, "pty");
    let has_prompt = attrs.get("prompt").and_then(AttrValue::as_str).is_some();
    let session_step = pty && kind == StepKind::Console;
    if pty && !session_step {
        problem(
            "the flag `pty` makes a `console` block a terminal session; this block is not one"
                .into(),
        );
    }
    if has_prompt && !session_step {
        problem("`prompt=` names the prompt of a terminal session: a `console` block with the flag `pty`".into());
    }
    if session_step && where_ == Where::Chroot {
        problem("a terminal session runs on the sandbox's side; to reach the fixture start it with `chroot \"$ROOTFS\" ...` instead of `where=chroot`".into());
    }
    session_step
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::KernelFeature;

    fn page(text: &str) -> (Vec<Recipe>, Vec<String>) {
        let (recipes, problems) = parse_page(Path::new("p.md"), "p.md", "fr", text);
        (recipes, problems.iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn groups_steps_by_id_in_order() {
        let (recipes, problems) = page(
            "```sh recipe=a fixture=debian-sysv at=/srv/a\necho 1\n```\n\n```sh recipe=b\ntrue\n```\n\n```console recipe=a\n$ echo 1\n1\n```\n\n```sh recipe=a\necho x\n```\n\n```text recipe=a expect\nx\n```\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(recipes.len(), 2);
        let a = &recipes[0];
        assert_eq!(a.fixture, "debian-sysv");
        assert_eq!(a.at.as_deref(), Some("/srv/a"));
        assert_eq!(a.location.line, 1);
        let kinds: Vec<_> = a.steps.iter().map(|s| s.kind()).collect();
        assert_eq!(
            kinds,
            [
                StepKind::Script,
                StepKind::Console,
                StepKind::Script,
                StepKind::Expect
            ]
        );
        assert_eq!(recipes[1].fixture, "empty");
    }

    #[test]
    fn requires_names_machine_needs_and_kernel_features() {
        let (recipes, problems) =
            page("```sh recipe=a requires=nf_tables+root+dummy+root\ntrue\n```\n");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            recipes[0].requires,
            [
                Requirement::Root,
                Requirement::Kernel(KernelFeature::Dummy),
                Requirement::Kernel(KernelFeature::NfTables),
            ]
        );
        let words: Vec<&str> = recipes[0].requires.iter().map(|r| r.as_str()).collect();
        assert_eq!(words, ["root", "dummy", "nf_tables"]);
        assert_eq!(
            serde_json::to_string(&recipes[0].requires).unwrap(),
            r#"["root","dummy","nf_tables"]"#
        );
        for word in Requirement::WORDS {
            assert_eq!(Requirement::from_word(word).map(|r| r.as_str()), Some(word));
        }
        let (_, problems) = page("```sh recipe=a requires=gpu\ntrue\n```\n");
        assert!(
            problems[0].ends_with(
                "unknown requirement `gpu` (use root, lxc, net, veth, bridge, dummy, nf_tables or fuse, joined by `+`)"
            ),
            "{problems:?}"
        );
    }

    #[test]
    fn kinds_follow_syntax_and_flags() {
        let (recipes, problems) = page(
            "```ini recipe=a file=$ROOTFS/etc/x mode=0600\nk=v\n```\n```ini recipe=a file=/etc/x check\nk=v\n```\n```rust recipe=a\nfn main() {}\n```\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        let steps = &recipes[0].steps;
        assert_eq!(
            steps[0].action,
            Action::WriteFile {
                path: "$ROOTFS/etc/x".into(),
                mode: Some(0o600)
            }
        );
        assert_eq!(steps[1].kind(), StepKind::Check);
        assert_eq!(steps[2].kind(), StepKind::Rust);
    }

    #[test]
    fn located_problems() {
        let cases: &[(&str, &str)] = &[
            (
                "```sh recipe=Bad\n```\n",
                "p.md:1: malformed recipe id `Bad`",
            ),
            (
                "```text recipe=a expect\nx\n```\n",
                "p.md:1: `expect` block of recipe `a` has no step",
            ),
            (
                "\n```console recipe=a\nout\n$ ls\n```\n",
                "p.md:2: malformed transcript: line 3 is output",
            ),
            ("```sh recipe=a exit=300\n```\n", "invalid `exit=300`"),
            (
                "```sh recipe=a timeout=soon\n```\n",
                "invalid `timeout=soon`",
            ),
            ("```sh recipe=a where=moon\n```\n", "unknown `where=moon`"),
            ("```ini recipe=a\nk\n```\n", "needs `file=PATH`"),
            (
                "```sh recipe=a file=etc/x\n```\n",
                "must be an absolute path",
            ),
            (
                "```sh recipe=a requires=gpu\n```\n",
                "unknown requirement `gpu`",
            ),
            (
                "```sh recipe=a\n```\n```sh recipe=a fixture=x\n```\n",
                "p.md:3: `fixture` describes the whole recipe",
            ),
        ];
        for (text, want) in cases {
            let (_, problems) = page(text);
            assert!(
                problems.iter().any(|p| p.contains(want)),
                "{text:?}: want {want:?}, got {problems:?}"
            );
        }
    }
}
