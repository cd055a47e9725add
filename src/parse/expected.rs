//! Checks of a recipe's expected output that need no run: every pattern
//! compiles (known placeholders, valid regular expressions and capture
//! names), and no step uses a capture (`$name`) before the step that sets
//! it has run. Pure.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

use super::Problem;
use crate::matcher;
use crate::model::{Location, Recipe, Step, StepKind};

/// `$name` or `${name}` in a shell text.
static REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
        .expect("valid reference regex")
});

/// Each expected line of a step, with its 1-based page line, to `f`.
fn expected_lines<'a>(step: &'a Step, mut f: impl FnMut(usize, &'a str)) {
    match step.kind() {
        StepKind::Console => {
            for entry in step.transcript() {
                for (k, text) in entry.expected.iter().enumerate() {
                    f(entry.line + 1 + k, text);
                }
            }
        }
        StepKind::Expect | StepKind::Check => {
            for (k, text) in step.body.lines().enumerate() {
                f(step.location.line + 1 + k, text);
            }
        }
        _ => {}
    }
}

/// The problems of one recipe's patterns and captures.
pub fn check_recipe(recipe: &Recipe) -> Vec<Problem> {
    let Some(first) = recipe.steps.first() else {
        return Vec::new();
    };
    let at = |line: usize, message: String| Problem {
        location: Location {
            path: first.location.path.clone(),
            line,
        },
        message,
    };
    let mut problems = Vec::new();
    // Where each capture is first set: its line, for messages, and its step.
    let mut sets: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (i, step) in recipe.steps.iter().enumerate() {
        expected_lines(step, |line, text| match matcher::capture_names(text) {
            Ok(found) => {
                for name in found {
                    sets.entry(name).or_insert((line, i));
                }
            }
            Err(e) => problems.push(at(line, e.to_string())),
        });
    }
    if sets.is_empty() {
        // No capture, so no `$name` to look for.
        return problems;
    }
    for (i, step) in recipe.steps.iter().enumerate() {
        let mut used = |line: usize, text: &str| {
            for reference in REFERENCE.captures_iter(text) {
                let name = reference
                    .get(1)
                    .or_else(|| reference.get(2))
                    .map_or("", |m| m.as_str());
                // A capture reaches only the steps after the one that sets it.
                if let Some(&(set_at, _)) = sets.get(name).filter(|(_, step)| *step >= i) {
                    problems.push(at(
                        line,
                        format!(
                            "`${name}` is used before it is set: the capture `{name}` is set at line {set_at}, and a capture reaches only the later steps of the recipe"
                        ),
                    ));
                }
            }
        };
        match step.kind() {
            StepKind::Script => used(step.location.line, &step.body),
            StepKind::Console => {
                for entry in step.transcript() {
                    used(entry.line, &entry.command);
                }
            }
            _ => {}
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use crate::parse::parse_page;
    use std::path::Path;

    fn problems(text: &str) -> Vec<String> {
        let (_, problems) = parse_page(Path::new("p.md"), "p.md", "fr", text);
        problems.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn patterns_and_captures() {
        assert_eq!(
            problems("```console recipe=a\n$ ip a\n[IP:addr] [PID]\n```\n"),
            ["p.md:3: unknown placeholder `[PID]` (known: [..], [IP], [MAC], [INT], [HEX], [UUID], [DATE], [DURATION]; end the line with ` (literal)` to match it as plain text)"]
        );
        assert_eq!(
            problems("```sh recipe=a\necho 1\n```\n```text recipe=a expect\nok\n( (re)\n```\n")
                .len(),
            1
        );
        // Used in a later step: fine; in the same transcript or before: not.
        assert!(problems(
            "```console recipe=a\n$ ip a\n[IP:addr]\n```\n```sh recipe=a\nping -c1 \"$addr\"\n```\n"
        )
        .is_empty());
        assert_eq!(
            problems("```console recipe=a\n$ ip a\n[IP:addr]\n$ ping ${addr}\n```\n"),
            ["p.md:4: `$addr` is used before it is set: the capture `addr` is set at line 3, and a capture reaches only the later steps of the recipe"]
        );
        assert_eq!(
            problems("```sh recipe=a\necho $n\n```\n```text recipe=a expect\n[INT:n]\n```\n").len(),
            1
        );
    }
}
