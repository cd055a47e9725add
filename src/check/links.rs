//! What mdBook would leave broken on the site, found before the build, each
//! as `path:line: message` (the job mdbook-linkcheck does for mdBook users):
//! `{{#include}}`, `{{#rustdoc_include}}` and `{{#playground}}` of files
//! that do not exist (or an `ANCHOR:` they lack), links to pages that do not
//! exist or that SUMMARY.md does not list, and `#anchors` no heading makes.
//! Heading ids follow mdBook's own rules (`mdbook-html`'s `id_from_content`
//! and `unique_id`), on Markdown parsed with mdBook's options.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::sync::LazyLock;

use mdbook_markdown::pulldown_cmark::{Event, LinkType, Tag, TagEnd};
use regex::Regex;

use crate::model::{Book, Location};
use crate::parse::blocks::{fenced_blocks, LineIndex, PageScan};
use crate::parse::Problem;

/// What the checks need of one page, from the pass of mdBook's parser that
/// found its steps: its directives, its links into the book and the heading
/// ids it makes.
#[derive(Debug, Default)]
pub struct PageLinks {
    includes: Vec<Include>,
    links: Vec<Link>,
    ids: BTreeSet<String>,
    /// The heading being read: its text so far and its explicit id.
    heading: Option<(String, Option<String>)>,
}

impl PageScan for PageLinks {
    fn start(text: &str, lines: &LineIndex) -> PageLinks {
        PageLinks {
            includes: includes(text, lines),
            ..PageLinks::default()
        }
    }

    /// The links of a page into the book, and the ids mdBook gives its
    /// headings (and definition terms), plus ids written in its raw HTML.
    fn event(&mut self, event: &Event<'_>, range: Range<usize>, lines: &LineIndex) {
        static HTML_ID: LazyLock<Regex> = LazyLock::new(|| {
            Regex::new(r#"\b(?:id|name)\s*=\s*["']([^"']+)["']"#).expect("a valid pattern")
        });
        match event {
            Event::Start(
                Tag::Link {
                    link_type,
                    dest_url,
                    ..
                }
                | Tag::Image {
                    link_type,
                    dest_url,
                    ..
                },
            ) => {
                if let Some(dest) = into_the_book(*link_type, dest_url) {
                    self.links.push(Link {
                        line: lines.line(range.start),
                        dest: dest.to_string(),
                    });
                }
            }
            Event::Start(Tag::Heading { id, .. }) => {
                self.heading = Some((String::new(), id.as_ref().map(|i| i.to_string())));
            }
            Event::Start(Tag::DefinitionListTitle) => self.heading = Some((String::new(), None)),
            Event::Text(t) | Event::Code(t) => {
                if let Some((content, _)) = self.heading.as_mut() {
                    content.push_str(t);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some((content, _)) = self.heading.as_mut() {
                    content.push('\n');
                }
            }
            Event::End(TagEnd::Heading(_) | TagEnd::DefinitionListTitle) => {
                if let Some((content, explicit)) = self.heading.take() {
                    let id = explicit
                        .unwrap_or_else(|| unique_id(&id_from_content(&content), &self.ids));
                    self.ids.insert(id);
                }
            }
            Event::Html(html) | Event::InlineHtml(html) => {
                for capture in HTML_ID.captures_iter(html) {
                    self.ids.insert(capture[1].to_string());
                }
            }
            _ => {}
        }
    }
}

/// Every broken include, link and anchor of one language's pages, from
/// what [`PageLinks`] found on each (in the order of `book.pages`).
pub fn check_links(book: &Book, scanned: &[PageLinks]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let checker = LinkChecker {
        book,
        pages: book
            .pages
            .iter()
            .zip(scanned)
            .map(|(page, found)| (page.rel.as_str(), found))
            .collect(),
    };
    for (page, found) in book.pages.iter().zip(scanned) {
        let dir = Path::new(&page.rel).parent().unwrap_or(Path::new(""));
        let at = |line, message| Problem {
            location: Location {
                path: page.path.as_path().into(),
                line,
            },
            message,
        };
        for include in &found.includes {
            if let Some(message) = include_problem(book, dir, include) {
                problems.push(at(include.line, message));
            }
        }
        for link in &found.links {
            if let Some(message) = checker.link_problem(&page.rel, dir, &link.dest) {
                problems.push(at(link.line, message));
            }
        }
    }
    problems
}

/// What is broken in `include`, a directive of a page in the folder `dir`:
/// a missing file, an anchor the file lacks, or a line range that is not
/// in it or cuts one of its code blocks.
fn include_problem(book: &Book, dir: &Path, include: &Include) -> Option<String> {
    let file = book.src.join(dir).join(&include.file);
    match std::fs::read_to_string(&file) {
        Err(_) => Some(format!(
            "`{{{{#{} {}}}}}`: {} does not exist",
            include.kind,
            include.target,
            file.display()
        )),
        Ok(body) => {
            let anchor = include
                .anchor
                .as_deref()
                .filter(|anchor| !has_anchor(&body, anchor))
                .map(|anchor| format!("{} has no `ANCHOR: {anchor}`", file.display()));
            let range = include
                .lines
                .and_then(|lines| range_problem(&body, lines, &file.display().to_string()));
            anchor
                .or(range)
                .map(|problem| format!("`{{{{#{} {}}}}}`: {problem}", include.kind, include.target))
        }
    }
}

/// Checks the links of one language's pages.
struct LinkChecker<'a> {
    book: &'a Book,
    /// The book's pages, by their path relative to `src/`: the pages the
    /// site has.
    pages: HashMap<&'a str, &'a PageLinks>,
}

impl LinkChecker<'_> {
    /// What is broken in the link `dest` of the page `rel`, in the folder
    /// `dir`: a place outside the book, a missing page or file, or an anchor
    /// no heading makes.
    fn link_problem(&self, rel: &str, dir: &Path, dest: &str) -> Option<String> {
        let (target, anchor) = match dest.split_once('#') {
            Some((target, anchor)) => (target, Some(anchor)),
            None => (dest, None),
        };
        let target = target.split('?').next().unwrap_or_default();
        let target = percent_encoding::percent_decode_str(target).decode_utf8_lossy();
        let target = if target.is_empty() {
            rel.to_string()
        } else {
            match resolve(dir, &target) {
                Some(target) => target,
                None => return Some(format!("link to `{dest}` leaves the book")),
            }
        };
        // mdBook renders `page.md` as `page.html`; links may use either.
        let md = match target.strip_suffix(".html") {
            Some(stem) => format!("{stem}.md"),
            None => target.clone(),
        };
        if !md.ends_with(".md") {
            return self.file_problem(dest, &target);
        }
        if let Some(message) = self.page_problem(dest, &md) {
            return Some(message);
        }
        let anchor = anchor.filter(|a| !a.is_empty())?;
        self.anchor_problem(rel, dest, &md, anchor)
    }

    /// A link to the page `md` that the site will not have: it does not
    /// exist, or SUMMARY.md does not list it.
    fn page_problem(&self, dest: &str, md: &str) -> Option<String> {
        // The site makes one page of its own (where results were proven).
        if md == crate::site::proven::PAGE || self.pages.contains_key(md) {
            return None;
        }
        let path = self.book.src.join(md);
        Some(if path.is_file() {
            format!("link to `{dest}`: SUMMARY.md does not list {md}, so the site has no such page")
        } else {
            format!(
                "link to `{dest}`: the page {} does not exist",
                path.display()
            )
        })
    }

    /// A link to the file `rel` (not a page), which does not exist.
    fn file_problem(&self, dest: &str, rel: &str) -> Option<String> {
        let path = self.book.src.join(rel);
        (!path.exists()).then(|| format!("link to `{dest}`: {} does not exist", path.display()))
    }

    /// A link from the page `rel` to an anchor that no heading of the page
    /// `md` makes; none when `md` is not one of the book's pages.
    fn anchor_problem(&self, rel: &str, dest: &str, md: &str, anchor: &str) -> Option<String> {
        let anchor = percent_encoding::percent_decode_str(anchor).decode_utf8_lossy();
        if self.pages.get(md)?.ids.contains(anchor.as_ref()) {
            return None;
        }
        let place = if md == rel { "this page" } else { md };
        Some(format!(
            "link to `{dest}`: no heading of {place} makes the anchor `#{anchor}`"
        ))
    }
}

/// `target` relative to the page's folder, as a path relative to `src/`
/// with `/` separators; `None` when it climbs out of `src/`.
fn resolve(dir: &Path, target: &str) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    let start = if target.starts_with('/') {
        PathBuf::new()
    } else {
        dir.to_path_buf()
    };
    for component in start.join(target.trim_start_matches('/')).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop()?;
            }
            _ => {}
        }
    }
    Some(parts.join("/"))
}

/// One `{{#include ...}}`-like directive of a page.
#[derive(Debug, PartialEq, Eq)]
struct Include {
    line: usize,
    kind: String,
    /// As written: `file.rs:anchor`.
    target: String,
    file: String,
    anchor: Option<String>,
    /// `file:START:END` and its short forms: the first and last line
    /// (1-based, inclusive), `None` where the directive leaves it open.
    lines: Option<(Option<usize>, Option<usize>)>,
}

/// The directives mdBook's `links` preprocessor expands, with its own
/// pattern (escaped `\{{#...}}` ones are left alone, as mdBook does).
fn includes(text: &str, lines: &LineIndex) -> Vec<Include> {
    static PATTERN: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\\\{\{#.*\}\}|\{\{\s*#([a-zA-Z0-9_]+)\s+([^}]+)\}\}").expect("a valid pattern")
    });
    let mut found = Vec::new();
    for capture in PATTERN.captures_iter(text) {
        let (Some(kind), Some(rest)) = (capture.get(1), capture.get(2)) else {
            continue;
        };
        let kind = kind.as_str();
        if !["include", "rustdoc_include", "playground", "playpen"].contains(&kind) {
            continue;
        }
        let Some(target) = rest.as_str().split_whitespace().next() else {
            continue;
        };
        let (file, anchor, range) = match target.split_once(':') {
            Some((file, rest)) if kind != "playground" && kind != "playpen" => {
                let first = rest.split(':').next().unwrap_or_default();
                let anchor = (!first.is_empty() && first.parse::<usize>().is_err())
                    .then(|| first.to_string());
                let range = anchor.is_none().then(|| line_range(rest)).flatten();
                (file, anchor, range)
            }
            _ => (target, None, None),
        };
        found.push(Include {
            line: lines.line(capture.get(0).map_or(0, |m| m.start())),
            kind: kind.to_string(),
            target: target.to_string(),
            file: file.to_string(),
            anchor,
            lines: range,
        });
    }
    found
}

/// The lines of `START:END`, `START`, `START:` or `:END` (mdBook's forms:
/// a lone START is that line only), or `None` when it is not a range.
fn line_range(spec: &str) -> Option<(Option<usize>, Option<usize>)> {
    let number = |s: &str| (!s.is_empty()).then(|| s.parse::<usize>().ok()).flatten();
    match spec.split_once(':') {
        None => number(spec).map(|n| (Some(n), Some(n))),
        Some((start, end)) => {
            let range = (number(start), number(end));
            (range != (None, None)).then_some(range)
        }
    }
}

/// What is wrong with including `lines` of `body`: a range past the end of
/// the file, or one that cuts a fenced code block of it (a range written by
/// line numbers silently shifts when the file above it changes; one that
/// covers a block's body exactly, or whole blocks, stays checkable).
fn range_problem(
    body: &str,
    (start, end): (Option<usize>, Option<usize>),
    name: &str,
) -> Option<String> {
    let count = body.lines().count();
    let (first, last) = (start.unwrap_or(1), end.unwrap_or(count));
    if let Some(past) = [first, last].into_iter().find(|&line| line > count) {
        return Some(format!(
            "line {past} is past the end of {name}, which has {count} lines"
        ));
    }
    if first > last {
        return Some(format!("the range {first}–{last} is empty"));
    }
    fences(body).into_iter().find_map(|(open, close)| {
        let body_lines = (open + 1, close - 1);
        let outside = last < open || first > close;
        let whole_block = first <= open && last >= close;
        let exactly_its_body = (first, last) == body_lines;
        (!(outside || whole_block || exactly_its_body)).then(|| {
            let cut = if first == last {
                format!("line {first} cuts")
            } else {
                format!("lines {first}–{last} cut")
            };
            format!(
                "{cut} the code block at lines {open}–{close} of {name} \
                 (its body is lines {}–{}): include the body whole, or mark it with `ANCHOR:`",
                body_lines.0, body_lines.1
            )
        })
    })
}

/// The fenced code blocks of a Markdown text, as the lines (1-based) of
/// their opening and closing fences, found by the parse the book's steps
/// come from ([`fenced_blocks`]); an unclosed one runs to the end, its
/// closing line one past the last.
fn fences(text: &str) -> Vec<(usize, usize)> {
    let lines = LineIndex::new(text);
    fenced_blocks(text)
        .into_iter()
        .map(|block| {
            let last = lines.line(block.range.end.saturating_sub(1).max(block.range.start));
            let closed = text[block.range.clone()]
                .trim_end()
                .lines()
                .last()
                .map(str::trim_start)
                .is_some_and(|l| l.starts_with("```") || l.starts_with("~~~"))
                && last > block.line;
            (block.line, if closed { last } else { last + 1 })
        })
        .collect()
}

/// Whether `body` marks the anchor `name` (mdBook: `ANCHOR: name`).
fn has_anchor(body: &str, name: &str) -> bool {
    body.match_indices("ANCHOR:").any(|(at, marker)| {
        let rest = body[at + marker.len()..].trim_start();
        rest.strip_prefix(name).is_some_and(|after| {
            !after
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-')
        })
    })
}

/// A link of a page to a place in the book (not another site).
#[derive(Debug, PartialEq, Eq)]
struct Link {
    line: usize,
    dest: String,
}

/// The destination of a link or image when it is a place in the book (not
/// another site, an e-mail address or nothing).
fn into_the_book(link_type: LinkType, dest_url: &str) -> Option<&str> {
    if matches!(link_type, LinkType::Autolink | LinkType::Email) {
        return None;
    }
    let external = dest_url.starts_with("//")
        || dest_url
            .split_once(':')
            .is_some_and(|(scheme, _)| !scheme.contains('/') && !scheme.contains('#'));
    (!external && !dest_url.is_empty()).then_some(dest_url)
}

/// mdBook's heading id: trimmed, lower-cased, whitespace to `-`, only
/// alphanumerics, `_` and `-` kept (`mdbook-html` `utils::id_from_content`).
pub fn id_from_content(content: &str) -> String {
    content
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                Some(c)
            } else if c.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// mdBook's `unique_id`: a repeated id gets `-1`, `-2`, ...
fn unique_id(id: &str, used: &BTreeSet<String>) -> String {
    if !used.contains(id) {
        return id.to_string();
    }
    (1..)
        .map(|n| format!("{id}-{n}"))
        .find(|candidate| !used.contains(candidate))
        .expect("an unused suffix")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::blocks::fenced_blocks_with;

    fn links_and_ids(text: &str) -> (Vec<Link>, BTreeSet<String>) {
        let (_, found) = fenced_blocks_with::<PageLinks>(text, &LineIndex::new(text));
        (found.links, found.ids)
    }

    #[test]
    fn ids_follow_mdbook() {
        // The cases of mdbook-html's own tests.
        for (heading, id) in [
            (
                "`--passes`: add more rustdoc passes",
                "--passes-add-more-rustdoc-passes",
            ),
            (
                "Method-call 🐙 expressions \u{1f47c}",
                "method-call--expressions-",
            ),
            ("_-_12345", "_-_12345"),
            ("中文標題 CJK title", "中文標題-cjk-title"),
            ("Über", "über"),
            ("Ce qu'a changé le temps", "ce-qua-changé-le-temps"),
        ] {
            assert_eq!(id_from_content(heading), id, "{heading}");
        }
    }

    #[test]
    fn headings_get_unique_ids_and_explicit_ones_count() {
        let text = "# Intro\n\n## Intro\n\n## Les « réseaux » d'`lxc` {#custom}\n\n## L'hôte -- et le pont\n\n<a id=\"raw\"></a>\n\nTerme\n: définition\n";
        let (_, ids) = links_and_ids(text);
        for id in [
            "intro",
            "intro-1",
            "custom",
            "lhôte--et-le-pont",
            "raw",
            "terme",
        ] {
            assert!(ids.contains(id), "{id} in {ids:?}");
        }
    }

    #[test]
    fn includes_with_lines_anchors_and_escapes() {
        let text = "a\n{{#include ../x.rs:main}}\n\\{{#include nope.md}}\n```\n{{#rustdoc_include y.rs:10:20}}\n```\n{{#playground z.rs editable}}\n{{#title T}}\n";
        let found = includes(text, &LineIndex::new(text));
        assert_eq!(
            found
                .iter()
                .map(|i| (
                    i.line,
                    i.kind.as_str(),
                    i.file.as_str(),
                    i.anchor.as_deref()
                ))
                .collect::<Vec<_>>(),
            vec![
                (2, "include", "../x.rs", Some("main")),
                (5, "rustdoc_include", "y.rs", None),
                (7, "playground", "z.rs", None),
            ]
        );
    }

    #[test]
    fn line_ranges_follow_mdbook_and_must_not_cut_a_code_block() {
        assert_eq!(line_range("2:10"), Some((Some(2), Some(10))));
        assert_eq!(line_range("2"), Some((Some(2), Some(2))));
        assert_eq!(line_range("2:"), Some((Some(2), None)));
        assert_eq!(line_range(":10"), Some((None, Some(10))));
        assert_eq!(line_range(":"), None);
        let page = "# T\n\n```text recipe=a\none\ntwo\n```\n\nend\n~~~\nx\n";
        // Lines 4–5 are the first block's body; line 10 begins a block left open.
        for (range, verdict) in [
            ((Some(4), Some(5)), None),
            ((Some(3), Some(6)), None),
            ((None, Some(2)), None),
            ((Some(8), Some(8)), None),
            (
                (Some(4), Some(4)),
                Some("line 4 cuts the code block at lines 3–6 of p.md (its body is lines 4–5)"),
            ),
            (
                (Some(2), Some(4)),
                Some("lines 2–4 cut the code block at lines 3–6 of p.md"),
            ),
            ((Some(5), Some(7)), Some("lines 5–7 cut")),
            (
                (Some(9), Some(10)),
                Some("lines 9–10 cut the code block at lines 9–11"),
            ),
            (
                (Some(4), Some(12)),
                Some("line 12 is past the end of p.md, which has 10 lines"),
            ),
            ((Some(40), None), Some("line 40 is past the end")),
            ((Some(6), Some(5)), Some("the range 6–5 is empty")),
        ] {
            let problem = range_problem(page, range, "p.md");
            match verdict {
                None => assert_eq!(problem, None, "{range:?}"),
                Some(start) => assert!(
                    problem.as_deref().is_some_and(|p| p.starts_with(start)),
                    "{range:?}: {problem:?}"
                ),
            }
        }
    }

    #[test]
    fn anchors_in_included_files() {
        let body = "// ANCHOR: main\nfn main() {}\n// ANCHOR_END: main\n// ANCHOR: main2\n";
        assert!(has_anchor(body, "main"));
        assert!(has_anchor(body, "main2"));
        assert!(!has_anchor(body, "mai"));
        assert!(!has_anchor(body, "other"));
    }

    #[test]
    fn only_links_into_the_book_are_checked() {
        let text = "[a](other.md#x) [b](https://example.org) <https://x.org> [c](#here)\n[d](mailto:a@b.c) ![img](pic.png) [e](sub/../p.html)\n";
        let dests: Vec<String> = links_and_ids(text).0.into_iter().map(|l| l.dest).collect();
        assert_eq!(dests, ["other.md#x", "#here", "pic.png", "sub/../p.html"]);
        assert_eq!(resolve(Path::new("sub"), "../a.md"), Some("a.md".into()));
        assert_eq!(resolve(Path::new(""), "../a.md"), None);
    }
}
