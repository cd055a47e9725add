//! `recipes list`: the recipes of one language, as text or JSON.

use std::io::Write;

use serde::Serialize;

use crate::check::check_book;
use crate::exit;
use crate::model::{
    chain, declared_fixture, declared_host, index, Attrs, Book, Recipe, RecipeIndex,
};
use crate::parse::load_book_with;
use crate::report::Format;
use crate::workspace::Workspace;

use super::{count, print_problems};

pub fn list(ws: &Workspace, lang: &str, format: Format) -> anyhow::Result<i32> {
    let (book, mut problems, _) = load_book_with::<()>(&ws.book_dir, lang)?;
    // The process ends after this command and the system takes the book's
    // memory back at once: freeing each page, recipe and step would be a
    // fifth of this thread's work.
    let book = std::mem::ManuallyDrop::new(book);
    // The book's checks run while the list is written out (in memory: the
    // problems come first).
    let listing = std::thread::scope(|scope| {
        let checks = scope.spawn(|| check_book(&book, &ws.fixture_names(), &ws.host_names()));
        let listing = render(&book, format);
        problems.extend(
            checks
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e)),
        );
        listing
    })?;
    print_problems(&mut problems, false);
    let mut out = std::io::stdout().lock();
    out.write_all(&listing)?;
    out.flush()?;
    Ok(exit::OK)
}

/// The recipes of a book as `list` prints them.
fn render(book: &Book, format: Format) -> std::io::Result<Vec<u8>> {
    let recipes: Vec<&Recipe> = book.pages.iter().flat_map(|p| &p.recipes).collect();
    // Only `needs` makes a recipe's fixture another's.
    let all = if recipes.iter().any(|r| r.needs.is_some()) {
        index(recipes.iter().copied())
    } else {
        RecipeIndex::new()
    };
    let mut out = Vec::new();
    match format {
        Format::Json => {
            let listed: Vec<Listed> = recipes
                .iter()
                .map(|r| Listed {
                    fixture: fixture(r, &all),
                    host: declared_host(&chain(r, &all)),
                    id: &r.id,
                    lang: &r.lang,
                    line: r.location.line,
                    needs: r.needs.as_deref(),
                    page: &r.page,
                    steps: r
                        .steps
                        .iter()
                        .map(|s| ListedStep {
                            attrs: &s.attrs,
                            kind: s.kind().as_str(),
                            line: s.location.line,
                            syntax: &s.syntax,
                        })
                        .collect(),
                })
                .collect();
            serde_json::to_writer_pretty(&mut out, &listed)?;
            writeln!(out)?;
        }
        Format::Human => {
            let width = recipes.iter().map(|r| r.id.len()).max().unwrap_or(0);
            for r in &recipes {
                writeln!(
                    out,
                    "{:width$}  {}:{}  fixture={}  {}",
                    r.id,
                    r.page,
                    r.location.line,
                    fixture(r, &all),
                    count(r.steps.len(), "step"),
                )?;
            }
        }
    }
    Ok(out)
}

/// The fixture a recipe runs on (a recipe it needs may declare it).
fn fixture<'a>(recipe: &'a Recipe, all: &RecipeIndex<'a>) -> &'a str {
    declared_fixture(&chain(recipe, all))
}

/// A recipe as `list --format json` shows it (keys in alphabetical order,
/// as they always were). `host` (the booted host its steps run in, its own
/// or a prerequisite's) and `needs` appear only when set.
#[derive(Serialize)]
struct Listed<'a> {
    fixture: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    id: &'a str,
    lang: &'a str,
    line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    needs: Option<&'a str>,
    page: &'a str,
    steps: Vec<ListedStep<'a>>,
}

#[derive(Serialize)]
struct ListedStep<'a> {
    attrs: &'a Attrs,
    kind: &'a str,
    line: usize,
    syntax: &'a str,
}
