//! Checks that span the pages of one language: one page per recipe id, known
//! fixtures and hosts, `needs` that resolve without cycles, no test
//! plumbing in what a reader types; FR/EN parity in [`parity`], links and
//! mdBook directives in [`links`]. Pure.

pub mod links;
mod parity;

use std::collections::{BTreeSet, HashMap};

use crate::model::{Book, Location, Recipe, StepKind, EMPTY_FIXTURE};
use crate::parse::Problem;
pub use parity::check_parity;

fn problem(location: &Location, message: String) -> Problem {
    Problem {
        location: location.clone(),
        message,
    }
}

/// Test plumbing in a block the reader sees: what a person would not type.
/// Such lines belong in a folded step (`fold`: "Vérification" / "Check").
fn plumbing_in(line: &str) -> Option<&'static str> {
    if line.contains("$RECIPES_LIB") || line.contains("${RECIPES_LIB}") {
        return Some("calls the runner's helpers (`$RECIPES_LIB`)");
    }
    if line.contains("date +%s%N") {
        return Some("measures time with `date +%s%N` arithmetic");
    }
    // `test …` or `[ … ]` whose result is turned into a sentence.
    let sentence = line.split(';').any(|part| {
        let part = part.trim_start();
        (part.starts_with("test ") || part.starts_with("[ "))
            && (part.contains("&& echo \"") || part.contains("&& echo '"))
    });
    if sentence {
        return Some("prints a sentence from a `test`");
    }
    if prints_a_sentence(line) {
        return Some("prints a sentence of its own (`&& echo`, `|| echo` or awk's `print`)");
    }
    (line.contains("echo ") && line.contains("$((")).then_some("prints shell arithmetic (`$((…))`)")
}

/// Whether `line` turns a result into a sentence the runner compares: a
/// quoted text of two words or more, printed by `echo` after `&&` or `||`,
/// or by awk's `print`. (A lone word, `&& echo done`, is left to the
/// writer.)
fn prints_a_sentence(line: &str) -> bool {
    let sentence = |text: &str| text.trim().contains(' ') && text.chars().any(char::is_alphabetic);
    let quoted_words = |rest: &str| {
        let rest = rest.trim_start();
        let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            return false;
        };
        sentence(rest[1..].split(quote).next().unwrap_or_default())
    };
    // awk prints what follows `print` up to the end of its action, maybe
    // behind a condition: `print (n > 0) ? "used" : "not used"`.
    let printed_by_awk = |rest: &str| {
        let action = rest.split('}').next().unwrap_or_default();
        action.split('"').skip(1).step_by(2).any(sentence)
    };
    ["&& echo ", "|| echo "].iter().any(|marker| {
        line.match_indices(marker)
            .any(|(at, m)| quoted_words(&line[at + m.len()..]))
    }) || line
        .match_indices("print ")
        .any(|(at, m)| printed_by_awk(&line[at + m.len()..]))
}

/// Lines of an unfolded script, transcript or written file that hold test
/// plumbing, as located problems.
fn plumbing(recipe: &Recipe) -> Vec<Problem> {
    let mut found = Vec::new();
    for step in recipe.steps.iter().filter(|s| !s.flag("fold")) {
        let mut check = |line: usize, text: &str| {
            if let Some(what) = plumbing_in(text) {
                found.push(problem(
                    &Location {
                        path: step.location.path.clone(),
                        line,
                    },
                    format!(
                        "an unfolded block of recipe `{}` {what}: that is a check, not what a reader types; move it into a step with the flag `fold`",
                        recipe.id
                    ),
                ));
            }
        };
        match step.kind() {
            // A script, or a file the reader is told to write (a script
            // they will run, say).
            StepKind::Script | StepKind::File => {
                for (i, text) in step.body.lines().enumerate() {
                    check(step.location.line + 1 + i, text);
                }
            }
            StepKind::Console => {
                for entry in step.transcript() {
                    check(entry.line, &entry.command);
                }
            }
            _ => {}
        }
    }
    found
}

/// Every problem of one language tree that parsing alone cannot see.
pub fn check_book(
    book: &Book,
    fixtures: &BTreeSet<String>,
    hosts: &BTreeSet<String>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    // The first recipe of each id, in the book's order.
    let mut seen: HashMap<&str, &Recipe> = HashMap::new();
    let mut first = Vec::new();
    for recipe in book.pages.iter().flat_map(|p| &p.recipes) {
        if let Some(earlier) = seen.get(recipe.id.as_str()) {
            problems.push(problem(
                &recipe.location,
                format!(
                    "recipe `{}` is already defined on another page, at {}; all steps of a recipe are on one page",
                    recipe.id, earlier.location
                ),
            ));
            continue;
        }
        seen.insert(&recipe.id, recipe);
        first.push(recipe);
        problems.extend(plumbing(recipe));
        problems.extend(machine_problems(recipe, fixtures, hosts));
    }
    for recipe in first {
        if recipe.needs.is_some() {
            problems.extend(needs_problems(recipe, &seen));
        }
    }
    problems
}

/// A `host=` that names no booted fixture, and an unknown fixture.
fn machine_problems(
    recipe: &Recipe,
    fixtures: &BTreeSet<String>,
    hosts: &BTreeSet<String>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(host) = recipe.host.as_deref().filter(|h| !hosts.contains(*h)) {
        let known = if hosts.is_empty() {
            "none here".to_string()
        } else {
            hosts.iter().cloned().collect::<Vec<_>>().join(", ")
        };
        let what = if fixtures.contains(host) {
            format!(
                "`host={host}` names a fixture that does not boot (give it `boot = \"systemd\"`)"
            )
        } else {
            format!("`host={host}` names no fixture")
        };
        problems.push(problem(
            &recipe.location,
            format!("{what}; the booted hosts: {known}"),
        ));
    }
    if !fixtures.contains(&recipe.fixture) {
        problems.push(problem(
            &recipe.location,
            format!(
                "unknown fixture `{}` (known: {})",
                recipe.fixture,
                fixtures.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    problems
}

/// What is wrong along the `needs` chain of `recipe`: a recipe it needs
/// that no page defines, a cycle through it, or a first recipe it needs
/// that runs on another fixture. `seen` holds the first recipe of each id.
fn needs_problems(recipe: &Recipe, seen: &HashMap<&str, &Recipe>) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut chain = vec![recipe.id.as_str()];
    let mut current = recipe;
    while let Some(needs) = current.needs.as_deref() {
        let Some(next) = seen.get(needs) else {
            problems.push(problem(
                &current.location,
                format!(
                    "recipe `{}` needs `{needs}`, which no page defines",
                    current.id
                ),
            ));
            break;
        };
        if chain.contains(&needs) {
            if current.id == recipe.id || needs == recipe.id {
                chain.push(needs);
                problems.push(problem(
                    &recipe.location,
                    format!("`needs` makes a cycle: {}", chain.join(" → ")),
                ));
            }
            break;
        }
        if next.fixture != recipe.fixture
            && next.fixture != EMPTY_FIXTURE
            && recipe.fixture != EMPTY_FIXTURE
            && current.id == recipe.id
        {
            problems.push(problem(
                &recipe.location,
                format!(
                    "recipe `{}` runs on fixture `{}` but needs `{needs}`, which runs on `{}`; they share one sandbox",
                    recipe.id, recipe.fixture, next.fixture
                ),
            ));
        }
        chain.push(needs);
        current = next;
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_page;
    use std::path::Path;

    fn plumbing_of(page: &str) -> Vec<String> {
        let (recipes, problems) = parse_page(Path::new("p.md"), "p.md", "fr", page);
        assert!(problems.is_empty(), "{problems:?}");
        recipes
            .iter()
            .flat_map(plumbing)
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn plumbing_in_an_unfolded_block_is_a_located_problem() {
        let page = "```sh recipe=a\nlxc-start -n web1\n\"$RECIPES_LIB\"/wait-runlevel web1\n```\n\n```console recipe=a\n$ start=$(date +%s%N); true\n$ test -d /proc && echo \"proc is there\"\nproc is there\n$ [ 1 -eq 1 ] && echo 'one'\none\n```\n";
        let found = plumbing_of(page);
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(
            found[0]
                .starts_with("p.md:3: an unfolded block of recipe `a` calls the runner's helpers"),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("p.md:7: ") && found[1].contains("`date +%s%N`"),
            "{found:?}"
        );
        assert!(
            found[2].starts_with("p.md:8: ")
                && found[2].contains("prints a sentence from a `test`"),
            "{found:?}"
        );
        assert!(found[3].starts_with("p.md:10: "), "{found:?}");
    }

    #[test]
    fn sentences_arithmetic_and_written_scripts_are_plumbing_too() {
        let page = "```sh recipe=a file=/usr/local/bin/boot-and-stop mode=0755\n#!/bin/sh\n\"$RECIPES_LIB\"/wait-runlevel \"$1\"\n```\n\n```console recipe=a\n$ cmp -s a b || echo \"the key has changed\"\n$ ps | awk '$1 > 3 { print \"host processes are visible\" }'\n$ echo \"bit 29: $(( 0x$mask >> 29 & 1 ))\"\nbit 29: 1\n$ awk '{ print ($1 > 0) ? \"the rule was used\" : \"unused\" }' f\n$ awk '/^Sig/ { print $2 }' f\n```\n";
        let found = plumbing_of(page);
        let lines: Vec<&str> = found
            .iter()
            .map(|p| p.split(' ').next().unwrap_or_default())
            .collect();
        assert_eq!(
            lines,
            ["p.md:3:", "p.md:7:", "p.md:8:", "p.md:9:", "p.md:11:"],
            "{found:?}"
        );
        assert!(
            found[1].contains("prints a sentence of its own"),
            "{found:?}"
        );
        assert!(found[3].contains("shell arithmetic"), "{found:?}");
    }

    #[test]
    fn folded_steps_and_plain_commands_are_not_plumbing() {
        let page = "```sh recipe=a fold\n\"$RECIPES_LIB\"/wait-runlevel web1\ntest -d /x && echo \"x\"\n```\n\n```console recipe=a\n$ lxc-info -n web1 -s\nState: RUNNING\n$ cp a b && echo \"copied\"\ncopied\n$ echo \"test -d is how\"\ntest -d is how\n```\n\n```sh recipe=a\ntrue\n```\n\n```text recipe=a expect\ntest -d /x && echo \"shown, not run\"\n```\n";
        assert_eq!(plumbing_of(page), Vec::<String>::new());
    }
}
