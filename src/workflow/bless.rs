//! `--bless`: new expected bodies written into the pages of every language
//! at once. Steps are paired across languages by recipe and position, and
//! each pair must correspond (same kind, syntax, attributes and old body);
//! otherwise nothing is written. A body is replaced inside its own fence,
//! found with pulldown-cmark's offsets (fences in list items, block quotes,
//! longer fences), keeping the container's prefix and the line endings.
//! Every file of every language is computed before any is written, and then
//! all are written together.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::fsutil::{write_all_atomically, FsError};
use crate::model::{Location, Recipe, Step};
use crate::outcome::Blessed;
use crate::parse::blocks::fenced_blocks;
use crate::parse::{languages, load_book};

use super::WorkflowError;

/// Why two languages' steps do not correspond, if they do not.
fn differs(a: &Step, b: &Step) -> Option<String> {
    if a.kind() != b.kind() {
        return Some(format!(
            "is a {} step where {} has a {} step",
            b.kind().as_str(),
            a.location,
            a.kind().as_str()
        ));
    }
    if a.syntax != b.syntax || a.attrs != b.attrs {
        return Some(format!(
            "has other attributes than the step at {}",
            a.location
        ));
    }
    if a.body != b.body {
        return Some(format!("has another body than the step at {}", a.location));
    }
    None
}

/// Checks that `recipe` (of one language) corresponds to `base` (of the
/// language that ran) step by step.
fn correspond(base: &Recipe, recipe: &Recipe) -> Result<(), WorkflowError> {
    if base.steps.len() != recipe.steps.len() {
        return Err(WorkflowError::NotBlessed {
            location: recipe.location.clone(),
            message: format!(
                "recipe `{}` has {} steps here and {} at {}; translations must have the same steps (run `recipes check`)",
                recipe.id,
                recipe.steps.len(),
                base.steps.len(),
                base.location
            ),
        });
    }
    for (a, b) in base.steps.iter().zip(&recipe.steps) {
        if let Some(why) = differs(a, b) {
            return Err(WorkflowError::NotBlessed {
                location: b.location.clone(),
                message: format!(
                    "step of recipe `{}` {why}; nothing was blessed (run `recipes check`)",
                    recipe.id
                ),
            });
        }
    }
    Ok(())
}

/// One body to write, found by recipe and step index.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Edit<'a> {
    recipe: &'a str,
    step: usize,
    body: &'a str,
    /// Where the run saw it.
    location: &'a Location,
}

/// The blessings, one per step; a step blessed twice (through several
/// `needs` chains) with two bodies is an error.
fn unique(blessed: &[Blessed]) -> Result<Vec<Edit<'_>>, WorkflowError> {
    let mut edits: BTreeMap<(&str, usize), Edit> = BTreeMap::new();
    for b in blessed {
        let edit = Edit {
            recipe: &b.recipe,
            step: b.step,
            body: &b.body,
            location: &b.location,
        };
        match edits.get(&(edit.recipe, edit.step)) {
            Some(first) if first.body != edit.body => {
                return Err(WorkflowError::NotBlessed {
                    location: b.location.clone(),
                    message: "two runs of this step printed different output; nothing was blessed"
                        .into(),
                })
            }
            Some(_) => {}
            None => {
                edits.insert((edit.recipe, edit.step), edit);
            }
        }
    }
    Ok(edits.into_values().collect())
}

/// Writes blessed bodies into the pages of every language, all or nothing.
/// Returns the files written.
pub fn apply_blessings(
    book_dir: &Path,
    blessed: &[Blessed],
) -> Result<Vec<PathBuf>, WorkflowError> {
    let edits = unique(blessed)?;
    if edits.is_empty() {
        return Ok(Vec::new());
    }
    let mut books = Vec::new();
    for lang in languages(book_dir) {
        books.push(load_book(book_dir, &lang)?.0);
    }
    let recipe_in = |book: &'_ crate::model::Book, id: &str| -> Option<Recipe> {
        book.pages
            .iter()
            .flat_map(|p| &p.recipes)
            .find(|r| r.id == id)
            .cloned()
    };
    // The language that ran is the one whose page holds the blessed step.
    let mut files: BTreeMap<PathBuf, Vec<(usize, &str)>> = BTreeMap::new();
    for edit in &edits {
        let base = books
            .iter()
            .filter_map(|b| recipe_in(b, edit.recipe))
            .find(|r| r.steps.iter().any(|s| s.location == *edit.location))
            .ok_or_else(|| WorkflowError::NotBlessed {
                location: edit.location.clone(),
                message: format!("recipe `{}` is no longer here", edit.recipe),
            })?;
        for book in &books {
            let recipe = recipe_in(book, edit.recipe).ok_or_else(|| WorkflowError::NoSuchStep {
                recipe: edit.recipe.to_string(),
                step: edit.step + 1,
                lang: book.lang.clone(),
            })?;
            correspond(&base, &recipe)?;
            let step = &recipe.steps[edit.step];
            files
                .entry(step.location.path.to_path_buf())
                .or_default()
                .push((step.location.line, edit.body));
        }
    }
    let mut writes = Vec::new();
    for (path, edits) in files {
        let text = std::fs::read_to_string(&path).map_err(FsError::at("read", &path))?;
        let result = replace_bodies(&text, &edits).map_err(|line| WorkflowError::NoBlock {
            path: path.clone(),
            line,
        })?;
        if result != text {
            writes.push((path, result.into_bytes()));
        }
    }
    write_all_atomically(&writes)?;
    Ok(writes.into_iter().map(|(path, _)| path).collect())
}

/// Replaces the body of each fenced block opening at a 1-based line; the
/// line of a block that cannot be found is the error.
fn replace_bodies(text: &str, edits: &[(usize, &str)]) -> Result<String, usize> {
    let blocks = fenced_blocks(text);
    let mut spans = Vec::new();
    for &(line, body) in edits {
        let block = blocks.iter().find(|b| b.line == line).ok_or(line)?;
        spans.push((body_span(text, &block.range).ok_or(line)?, body));
    }
    spans.sort_by_key(|((range, _), _)| std::cmp::Reverse(range.start));
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out = text.to_string();
    for ((range, prefix), body) in spans {
        let mut new = String::new();
        for line in body.lines() {
            if line.is_empty() {
                new.push_str(prefix.trim_end());
            } else {
                new.push_str(&prefix);
                new.push_str(line);
            }
            new.push_str(eol);
        }
        out.replace_range(range, &new);
    }
    Ok(out)
}

/// The bytes of a fenced block's body lines (from the line after the
/// opening fence to the line before the closing one, line endings
/// included), and the prefix its lines carry (list indentation, `> `).
fn body_span(
    text: &str,
    range: &std::ops::Range<usize>,
) -> Option<(std::ops::Range<usize>, String)> {
    let open_start = line_start(text, range.start);
    let open_end = line_end(text, range.start);
    let open = &text[open_start..open_end];
    let col = range.start - open_start;
    // The fence itself starts at or after the block's offset.
    let fence_at = col + open[col..].find(['`', '~'])?;
    let marker = open[fence_at..].chars().next()?;
    let width = open[fence_at..]
        .chars()
        .take_while(|c| *c == marker)
        .count();
    // Continuation lines keep the quote markers; a list marker becomes
    // the indentation it stands for.
    let prefix: String = open[..fence_at]
        .chars()
        .map(|c| {
            if c == '>' || c.is_whitespace() {
                c
            } else {
                ' '
            }
        })
        .collect();
    let body_start = (open_end + 1).min(text.len());
    let end = range.end.min(text.len());
    if end <= body_start {
        return Some((body_start..body_start, prefix));
    }
    let last_start = line_start(text, end - 1);
    let last = text[last_start..line_end(text, end - 1)].trim_end_matches('\r');
    let closing = last
        .trim_start_matches(|c: char| c == '>' || c.is_whitespace())
        .trim_end();
    let closed = closing.chars().all(|c| c == marker) && closing.chars().count() >= width;
    let body_end = if closed && last_start >= body_start {
        last_start
    } else {
        (line_end(text, end - 1) + 1).min(text.len())
    };
    Some((body_start..body_end.max(body_start), prefix))
}

fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

/// The offset of the `\n` that ends the line holding `at` (or the end).
fn line_end(text: &str, at: usize) -> usize {
    text[at..].find('\n').map_or(text.len(), |i| at + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replace(text: &str, line: usize, body: &str) -> String {
        replace_bodies(text, &[(line, body)]).unwrap()
    }

    #[test]
    fn replaces_a_body_inside_its_own_fence() {
        let text = "a\n\n```console recipe=x\n$ echo hi\nold\n```\nafter\n";
        assert_eq!(
            replace(text, 3, "$ echo hi\nhi\n"),
            "a\n\n```console recipe=x\n$ echo hi\nhi\n```\nafter\n"
        );
        let quoted = "> ```text recipe=x expect\n> old\n>\n> more\n> ```\n";
        assert_eq!(
            replace(quoted, 1, "new\n\nlines\n"),
            "> ```text recipe=x expect\n> new\n>\n> lines\n> ```\n"
        );
        let crlf = "```text recipe=x expect\r\nold\r\n```\r\n";
        assert_eq!(
            replace(crlf, 1, "new\n"),
            "```text recipe=x expect\r\nnew\r\n```\r\n"
        );
        let longer = "````text recipe=x expect\n```\n````\n";
        assert_eq!(
            replace(longer, 1, "x\n"),
            "````text recipe=x expect\nx\n````\n"
        );
        // A fence that opens on a list-marker line, then a thematic break.
        let listed = "- ```text recipe=x expect\n  old\n  ```\n\n---\n\nkept\n";
        assert_eq!(
            replace(listed, 1, "new\n"),
            "- ```text recipe=x expect\n  new\n  ```\n\n---\n\nkept\n"
        );
        let nested = "> 1. ```text recipe=x expect\n>    old\n>    ```\n";
        assert_eq!(
            replace(nested, 1, "a\nb\n"),
            "> 1. ```text recipe=x expect\n>    a\n>    b\n>    ```\n"
        );
        let empty = "```text recipe=x expect\n```\nz\n";
        assert_eq!(
            replace(empty, 1, "q\n"),
            "```text recipe=x expect\nq\n```\nz\n"
        );
        // Two blocks of one page: each keeps its own place.
        let two = "```text recipe=x expect\na\n```\n\n```text recipe=y expect\nb\n```\n";
        assert_eq!(
            replace_bodies(two, &[(1, "A\n"), (5, "B\nB\n")]).unwrap(),
            "```text recipe=x expect\nA\n```\n\n```text recipe=y expect\nB\nB\n```\n"
        );
        assert_eq!(replace_bodies(two, &[(2, "A\n")]), Err(2));
    }
}
