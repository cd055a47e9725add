//! Fenced code blocks of a Markdown page, found with mdBook's own parser
//! (pulldown-cmark with mdBook's options) so that only what the site shows
//! as a code block counts (not HTML comments, indented code or the body of a
//! longer fence), with the exact 1-based line of each opening fence. Other
//! readers of a page ([`PageScan`]) are fed the same pass.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::ops::Range;

use mdbook_markdown::pulldown_cmark::{CodeBlockKind, Event, Tag, TagEnd};
use mdbook_markdown::{new_cmark_parser, MarkdownOptions};

/// A fenced block as written in the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block<'a> {
    /// 1-based line of the opening fence.
    pub line: usize,
    /// The info string as written: CommonMark's own backslash escapes and
    /// entities are not applied, so that quoted values read the same in the
    /// page and in the grammar (`prompt="a \"b\""`).
    pub info: Cow<'a, str>,
    /// The body with `\n` line endings (CRLF pages are normalised).
    pub body: String,
    /// Byte offsets of the whole block in the page, fences included.
    pub range: std::ops::Range<usize>,
}

/// Byte offsets of line starts, to turn an offset into a 1-based line: found
/// on the first question (a page without fences or links needs none).
pub struct LineIndex<'a> {
    text: &'a str,
    starts: OnceCell<Vec<usize>>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        LineIndex {
            text,
            starts: OnceCell::new(),
        }
    }

    pub fn line(&self, offset: usize) -> usize {
        let starts = self.starts.get_or_init(|| {
            let mut starts = vec![0];
            starts.extend(
                self.text
                    .bytes()
                    .enumerate()
                    .filter(|&(_, b)| b == b'\n')
                    .map(|(i, _)| i + 1),
            );
            starts
        });
        match starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

/// Another reader of a page, fed every event of the pass of the Markdown
/// parser that finds the page's fenced blocks, so that a page is parsed
/// once whatever else reads it.
pub trait PageScan: Send + Sized {
    /// Starts reading a page's text.
    fn start(text: &str, lines: &LineIndex) -> Self;
    /// One event of the parse, with its byte range in the text.
    fn event(&mut self, event: &Event<'_>, range: Range<usize>, lines: &LineIndex);
}

/// Nothing else reads the page.
impl PageScan for () {
    fn start(_: &str, _: &LineIndex) {}
    fn event(&mut self, _: &Event<'_>, _: Range<usize>, _: &LineIndex) {}
}

/// Every fenced code block of `text`, in document order.
pub fn fenced_blocks(text: &str) -> Vec<Block<'_>> {
    fenced_blocks_with::<()>(text, &LineIndex::new(text)).0
}

/// [`fenced_blocks`], and what the reader `S` made of the same pass;
/// `lines` indexes `text`.
pub fn fenced_blocks_with<'a, S: PageScan>(
    text: &'a str,
    lines: &LineIndex,
) -> (Vec<Block<'a>>, S) {
    let mut scan = S::start(text, lines);
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    let parser = new_cmark_parser(text, &MarkdownOptions::default());
    for (event, range) in parser.into_offset_iter() {
        match &event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                current = Some(Block {
                    line: lines.line(range.start),
                    info: raw_info(&text[range.start..])
                        .map_or_else(|| Cow::Owned(info.trim().to_string()), Cow::Borrowed),
                    // The whole block's length: one allocation for the body.
                    body: String::with_capacity(range.len()),
                    range: range.clone(),
                });
            }
            Event::Text(t) => {
                if let Some(block) = current.as_mut() {
                    block.body.push_str(t);
                }
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some(mut block) = current.take() {
                    block.range.end = range.end;
                    if block.body.contains('\r') {
                        block.body = block.body.replace("\r\n", "\n");
                    }
                    blocks.push(block);
                }
            }
            _ => {}
        }
        scan.event(&event, range, lines);
    }
    (blocks, scan)
}

/// The info string of the fence that opens `from`, as written.
fn raw_info(from: &str) -> Option<&str> {
    let line = from.lines().next()?.trim_start();
    let fence = line.chars().next().filter(|c| *c == '`' || *c == '~')?;
    Some(line.trim_start_matches(fence).trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<(usize, String, String)> {
        fenced_blocks(text)
            .into_iter()
            .map(|b| (b.line, b.info.into_owned(), b.body))
            .collect()
    }

    #[test]
    fn finds_backtick_and_tilde_fences() {
        let text = "# T\n\n```sh a\necho 1\n```\n\n~~~console b\n$ x\n~~~\n";
        assert_eq!(
            lines(text),
            vec![
                (3, "sh a".into(), "echo 1\n".into()),
                (7, "console b".into(), "$ x\n".into())
            ]
        );
    }

    #[test]
    fn ignores_what_only_looks_like_a_fence() {
        let text = "<!--\n```sh x\nno\n```\n-->\n\n    ```sh y\n    no\n    ```\n\n````md\n```sh z\nno\n```\n````\n";
        let found = lines(text);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, 11);
        assert_eq!(found[0].1, "md");
        assert!(found[0].2.contains("```sh z"));
    }

    #[test]
    fn fences_in_lists_and_quotes_keep_their_line() {
        let text =
            "- item\n\n  ```sh a\n  echo 1\n  ```\n\n> quote\n>\n> ```sh b\n> echo 2\n> ```\n";
        assert_eq!(
            lines(text),
            vec![
                (3, "sh a".into(), "echo 1\n".into()),
                (9, "sh b".into(), "echo 2\n".into())
            ]
        );
    }

    #[test]
    fn crlf_and_accents_do_not_shift_lines() {
        let text = "# Été\r\n\r\nÇa marche, à coup sûr.\r\n\r\n```sh a\r\necho é\r\nls\r\n```\r\n";
        assert_eq!(lines(text), vec![(5, "sh a".into(), "echo é\nls\n".into())]);
    }

    #[test]
    fn info_strings_are_kept_as_written() {
        let text =
            "```sh a=\"x \\\"y\\\" \\\\ \\$ &amp;\"\nz\n```\n\n> ~~~ console b=\\$\n> $ x\n> ~~~\n";
        let found = lines(text);
        assert_eq!(found[0].1, r#"sh a="x \"y\" \\ \$ &amp;""#);
        assert_eq!(found[1].1, r"console b=\$");
    }

    #[test]
    fn line_index_maps_offsets() {
        let index = LineIndex::new("a\nbc\n\nd");
        assert_eq!(index.line(0), 1);
        assert_eq!(index.line(2), 2);
        assert_eq!(index.line(3), 2);
        assert_eq!(index.line(5), 3);
        assert_eq!(index.line(6), 4);
    }
}
