//! Checks that span pages and languages: one page per recipe id, known
//! fixtures, `needs` that resolve without cycles, and FR/EN parity
//! (same ids, byte-identical step bodies and attributes). Pure.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{index, Book, Location, Recipe, EMPTY_FIXTURE};
use crate::parse::Problem;

fn problem(location: &Location, message: String) -> Problem {
    Problem {
        location: location.clone(),
        message,
    }
}

/// Every problem of one language tree that parsing alone cannot see.
pub fn check_book(
    book: &Book,
    fixtures: &BTreeSet<String>,
    hosts: &BTreeSet<String>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut seen: BTreeMap<&str, &Recipe> = BTreeMap::new();
    for recipe in book.pages.iter().flat_map(|p| &p.recipes) {
        if let Some(first) = seen.get(recipe.id.as_str()) {
            problems.push(problem(
                &recipe.location,
                format!(
                    "recipe `{}` is already defined on another page, at {}; all steps of a recipe are on one page",
                    recipe.id, first.location
                ),
            ));
            continue;
        }
        seen.insert(&recipe.id, recipe);
        if let Some(host) = recipe.host.as_deref().filter(|h| !hosts.contains(*h)) {
            let known = if hosts.is_empty() {
                "none here".to_string()
            } else {
                hosts.iter().cloned().collect::<Vec<_>>().join(", ")
            };
            let what = if fixtures.contains(host) {
                format!("`host={host}` names a fixture that does not boot (give it `boot = \"systemd\"`)")
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
    }
    for recipe in seen.values() {
        let mut chain = vec![recipe.id.as_str()];
        let mut current = *recipe;
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
    }
    problems
}

/// FR/EN parity between the original book and a translation.
pub fn check_parity<'a>(original: &'a Book, translation: &'a Book) -> Vec<Problem> {
    let recipes = |book: &'a Book| book.pages.iter().flat_map(|p| &p.recipes);
    // The first recipe of each id (`check_book` reports the others).
    let (a, b) = (index(recipes(original)), index(recipes(translation)));
    let mut problems = Vec::new();
    for (id, ra) in &a {
        let Some(rb) = b.get(id) else {
            problems.push(problem(
                &ra.location,
                format!(
                    "recipe `{id}` has no counterpart in the `{}` book ({})",
                    translation.lang,
                    translation.src.join(&ra.page).display()
                ),
            ));
            continue;
        };
        if ra.page != rb.page {
            problems.push(problem(
                &rb.location,
                format!(
                    "recipe `{id}` is on `{}` here but on `{}` in the `{}` book; translations keep the same file names",
                    rb.page, ra.page, original.lang
                ),
            ));
        }
        if ra.steps.len() != rb.steps.len() {
            problems.push(problem(
                &rb.location,
                format!(
                    "recipe `{id}` has {} steps here but {} in the `{}` book ({})",
                    rb.steps.len(),
                    ra.steps.len(),
                    original.lang,
                    ra.location
                ),
            ));
            continue;
        }
        for (n, (sa, sb)) in ra.steps.iter().zip(&rb.steps).enumerate() {
            let mut differs = Vec::new();
            if sa.syntax != sb.syntax || sa.attrs != sb.attrs {
                differs.push("attributes");
            }
            if sa.body != sb.body {
                differs.push("body");
            }
            if !differs.is_empty() {
                problems.push(problem(
                    &sb.location,
                    format!(
                        "step {} of recipe `{id}` differs in its {} from {} (`{}` book); code is not translated",
                        n + 1,
                        differs.join(" and "),
                        sa.location,
                        original.lang
                    ),
                ));
            }
        }
    }
    for (id, rb) in &b {
        if !a.contains_key(id) {
            problems.push(problem(
                &rb.location,
                format!(
                    "recipe `{id}` has no counterpart in the `{}` book ({})",
                    original.lang,
                    original.src.join(&rb.page).display()
                ),
            ));
        }
    }
    problems
}
