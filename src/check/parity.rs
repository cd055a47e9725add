//! FR/EN parity: a translation has the same recipe ids as the original
//! book, on pages of the same names, with byte-identical steps (syntax,
//! attributes and body: code is not translated). Pure.

use std::collections::hash_map::{Entry, HashMap};

use super::problem;
use crate::model::{Book, Recipe};
use crate::parse::Problem;

/// The first recipe of each id of a book, in the book's order (`check_book`
/// reports the others), and where each id is in that list.
struct FirstRecipes<'a> {
    order: Vec<&'a Recipe>,
    by_id: HashMap<&'a str, &'a Recipe>,
}

impl<'a> FirstRecipes<'a> {
    fn of(book: &'a Book) -> Self {
        let mut first = FirstRecipes {
            order: Vec::new(),
            by_id: HashMap::new(),
        };
        for recipe in book.pages.iter().flat_map(|p| &p.recipes) {
            if let Entry::Vacant(e) = first.by_id.entry(&recipe.id) {
                e.insert(recipe);
                first.order.push(recipe);
            }
        }
        first
    }
}

/// FR/EN parity between the original book and a translation.
pub fn check_parity(original: &Book, translation: &Book) -> Vec<Problem> {
    let (a, b) = (FirstRecipes::of(original), FirstRecipes::of(translation));
    let mut problems = Vec::new();
    for ra in &a.order {
        match b.by_id.get(ra.id.as_str()) {
            Some(rb) => problems.extend(counterpart_problems(original, ra, rb)),
            None => problems.push(missing(ra, translation)),
        }
    }
    for rb in &b.order {
        if !a.by_id.contains_key(rb.id.as_str()) {
            problems.push(missing(rb, original));
        }
    }
    problems
}

/// The recipe `recipe` has no counterpart in the book `other`.
fn missing(recipe: &Recipe, other: &Book) -> Problem {
    problem(
        &recipe.location,
        format!(
            "recipe `{}` has no counterpart in the `{}` book ({})",
            recipe.id,
            other.lang,
            other.src.join(&recipe.page).display()
        ),
    )
}

/// How the translation `rb` of the recipe `ra` of `original` differs from
/// it: its page, its number of steps, or a step's attributes or body.
fn counterpart_problems(original: &Book, ra: &Recipe, rb: &Recipe) -> Vec<Problem> {
    let id = &ra.id;
    let mut problems = Vec::new();
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
        return problems;
    }
    for (n, (sa, sb)) in ra.steps.iter().zip(&rb.steps).enumerate() {
        let attributes = sa.syntax != sb.syntax || sa.attrs != sb.attrs;
        let body = sa.body != sb.body;
        let differs = match (attributes, body) {
            (false, false) => continue,
            (true, false) => "attributes",
            (false, true) => "body",
            (true, true) => "attributes and body",
        };
        problems.push(problem(
            &sb.location,
            format!(
                "step {} of recipe `{id}` differs in its {differs} from {} (`{}` book); code is not translated",
                n + 1,
                sa.location,
                original.lang
            ),
        ));
    }
    problems
}
