//! `recipes check`: every problem of both languages, their parity, and the
//! fixture definitions, as `path:line: message`.

use anyhow::bail;

use crate::check::links::{check_links, PageLinks};
use crate::check::{check_book, check_parity};
use crate::cli::CheckFormat;
use crate::exit;
use crate::fixture::FixtureError;
use crate::model::{Book, Location};
use crate::parse::{languages, load_book_with, BookError, Problem};
use crate::workspace::Workspace;

use super::{count, print_problems};

pub fn check(ws: &Workspace, format: CheckFormat) -> anyhow::Result<i32> {
    let langs = languages(&ws.book_dir);
    if langs.is_empty() {
        bail!(
            "{}: no book here (expected {}/fr/book.toml and {}/en/book.toml)",
            ws.book_dir.display(),
            ws.book_dir.display(),
            ws.book_dir.display()
        );
    }
    let (books, mut problems) = load_and_check(ws, &langs)?;
    // The process ends after this command and the system takes the books'
    // memory back at once: freeing each page, recipe and step would be most
    // of this thread's work.
    let books = std::mem::ManuallyDrop::new(books);
    if format != CheckFormat::Human {
        problems.sort_by(|a, b| a.location.cmp(&b.location));
        print!("{}", render(&problems, format));
        return Ok(if problems.is_empty() {
            exit::OK
        } else {
            exit::ERROR
        });
    }
    if problems.is_empty() {
        let recipes: usize = books[0].pages.iter().map(|p| p.recipes.len()).sum();
        println!(
            "ok: {recipes} recipes, {} languages ({})",
            books.len(),
            langs.join(", ")
        );
        return Ok(exit::OK);
    }
    print_problems(&mut problems, true);
    eprintln!("{} found", count(problems.len(), "problem"));
    Ok(exit::ERROR)
}

/// Every language read side by side, then the checks of each and their
/// parity side by side, with the fixture definitions' problems (read while
/// the pages are parsed), in the order `check` has always listed them.
fn load_and_check(
    ws: &Workspace,
    langs: &[String],
) -> Result<(Vec<Book>, Vec<Problem>), BookError> {
    let (loaded, fixtures, hosts, definitions) = std::thread::scope(|scope| {
        let loads: Vec<_> = langs
            .iter()
            .map(|lang| scope.spawn(|| load_book_with::<PageLinks>(&ws.book_dir, lang)))
            .collect();
        let known = (ws.fixture_names(), ws.host_names(), fixture_problems(ws));
        let loaded = loads.into_iter().map(join).collect::<Result<Vec<_>, _>>();
        (loaded, known.0, known.1, known.2)
    });
    let mut problems = Vec::new();
    let mut books = Vec::new();
    let mut scans = Vec::new();
    let mut parsing = Vec::new();
    for (book, found, links) in loaded? {
        books.push(book);
        parsing.push(found);
        scans.push(links);
    }
    let (checks, parity) = std::thread::scope(|scope| {
        let checks: Vec<_> = books
            .iter()
            .zip(&scans)
            .map(|(book, links)| {
                scope.spawn(|| {
                    let mut found = check_book(book, &fixtures, &hosts);
                    found.extend(check_links(book, links));
                    found
                })
            })
            .collect();
        let parity: Vec<Problem> = books[1..]
            .iter()
            .flat_map(|translation| check_parity(&books[0], translation))
            .collect();
        (checks.into_iter().map(join).collect::<Vec<_>>(), parity)
    });
    // Read where each page was parsed; the process's exit frees them.
    std::mem::forget(scans);
    for (found, checked) in parsing.into_iter().zip(checks) {
        problems.extend(found);
        problems.extend(checked);
    }
    problems.extend(parity);
    problems.extend(definitions);
    Ok((books, problems))
}

/// The result of a scoped thread, its panic carried on.
fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// The problems as JSON (`[{path, line, message}]`) or as GitHub workflow
/// annotations (`::error file=…,line=…::message`, escaped as the runner
/// reads them: `report::github::annotation`).
fn render(problems: &[Problem], format: CheckFormat) -> String {
    let path = |p: &Problem| p.location.path.display().to_string();
    match format {
        CheckFormat::Json => {
            let list: Vec<serde_json::Value> = problems
                .iter()
                .map(|p| serde_json::json!({"path": path(p), "line": p.location.line, "message": p.message}))
                .collect();
            format!("{}\n", serde_json::Value::Array(list))
        }
        CheckFormat::Github | CheckFormat::Human => problems
            .iter()
            .map(|p| crate::report::github::annotation(&path(p), p.location.line, &p.message))
            .collect(),
    }
}

/// Fixture definitions the recipes rely on must parse.
fn fixture_problems(ws: &Workspace) -> Vec<Problem> {
    let store = ws.store();
    let mut problems = Vec::new();
    for name in store.names() {
        if let Err(FixtureError::Definition { path, message }) = store.definition(&name) {
            problems.push(Problem {
                location: Location {
                    line: toml_error_line(&message),
                    path: path.into(),
                },
                // The last line of a TOML error says what is wrong.
                message: message
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or_default()
                    .to_string(),
            });
        }
    }
    problems
}

/// The line a TOML error message points at ("... at line 3, column 1"), or 1.
fn toml_error_line(message: &str) -> usize {
    message
        .split("line ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}
