//! Checks of a recipe's expected output that need no run: every pattern
//! compiles (known placeholders, valid regular expressions and capture
//! names), and no step uses a capture (`$name`) before the step that sets
//! it has run. Pure.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

use super::Problem;
use crate::matcher;
use crate::model::{Location, Recipe, StepKind};

/// `$name` or `${name}` in a shell text.
static REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
        .expect("valid reference regex")
});

/// Each expected line of a step with its 1-based page line.
fn expected_lines(recipe: &Recipe, index: usize) -> Vec<(usize, &str)> {
    let step = &recipe.steps[index];
    match step.kind {
        StepKind::Console => step
            .transcript
            .iter()
            .flat_map(|e| {
                e.expected
                    .iter()
                    .enumerate()
                    .map(move |(k, l)| (e.line + 1 + k, l.as_str()))
            })
            .collect(),
        StepKind::Expect | StepKind::Check => step
            .body
            .lines()
            .enumerate()
            .map(|(k, l)| (step.location.line + 1 + k, l))
            .collect(),
        _ => Vec::new(),
    }
}

/// The problems of one recipe's patterns and captures.
pub fn check_recipe(recipe: &Recipe) -> Vec<Problem> {
    let path = &recipe.steps.first().map(|s| s.location.path.clone());
    let Some(path) = path else {
        return Vec::new();
    };
    let at = |line: usize, message: String| Problem {
        location: Location {
            path: path.clone(),
            line,
        },
        message,
    };
    let mut problems = Vec::new();
    // Where each capture is set, for messages.
    let mut sets: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_step: Vec<Vec<(usize, String)>> = Vec::new();
    for i in 0..recipe.steps.len() {
        let mut names = Vec::new();
        for (line, text) in expected_lines(recipe, i) {
            match matcher::capture_names(text) {
                Ok(found) => names.extend(found.into_iter().map(|n| (line, n))),
                Err(e) => problems.push(at(line, e.to_string())),
            }
        }
        for (line, name) in &names {
            sets.entry(name.clone()).or_insert(*line);
        }
        per_step.push(names);
    }
    if sets.is_empty() {
        // No capture, so no `$name` to look for.
        return problems;
    }
    // Names set by the steps that have finished.
    let mut set: Vec<&str> = Vec::new();
    for (i, step) in recipe.steps.iter().enumerate() {
        let texts: Vec<(usize, &str)> = match step.kind {
            StepKind::Script => vec![(step.location.line, step.body.as_str())],
            StepKind::Console => step
                .transcript
                .iter()
                .map(|e| (e.line, e.command.as_str()))
                .collect(),
            _ => Vec::new(),
        };
        for (line, text) in texts {
            for reference in REFERENCE.captures_iter(text) {
                let name = reference
                    .get(1)
                    .or_else(|| reference.get(2))
                    .map_or("", |m| m.as_str());
                if let Some(set_at) = sets.get(name) {
                    if !set.contains(&name) {
                        problems.push(at(
                            line,
                            format!(
                                "`${name}` is used before it is set: the capture `{name}` is set at line {set_at}, and a capture reaches only the later steps of the recipe"
                            ),
                        ));
                    }
                }
            }
        }
        set.extend(per_step[i].iter().map(|(_, n)| n.as_str()));
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
