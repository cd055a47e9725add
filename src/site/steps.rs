//! How some steps read on the site (DESIGN §8): a folded step (`fold`) is
//! collapsed under a summary line ("Vérification" / "Check"), consecutive
//! folded steps under one; a terminal session (`pty`) shows what a person
//! sees in the terminal: the command that starts it, the program's output,
//! what is typed at its prompt, and keys as keycaps (no exit-code line).
//! One pass over the page's text, after the badges are in.

use std::ops::Range;

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

use crate::model::AttrValue;
use crate::parse::info::parse_info;
use crate::parse::session::{prompt_regex, segments, Segment};

/// The summary line of folded steps.
pub fn fold_summary(lang: &str) -> &'static str {
    if lang == "fr" {
        "Vérification"
    } else {
        "Check"
    }
}

/// A fenced block of the page that is shown differently.
struct Shown {
    /// The block, fences included, from the start of its first line.
    range: Range<usize>,
    /// What precedes the fence on its line (list indentation, `> `).
    prefix: String,
    fold: bool,
    /// Expected output to show as a reader reads it (`console`, `expect`):
    /// `Some(true)` for a transcript.
    expected: Option<bool>,
    /// The session's HTML, for a `pty` block.
    session: Option<String>,
}

/// The page with its folded steps collapsed and its sessions rendered.
pub fn present(content: &str, lang: &str) -> String {
    let blocks = shown_blocks(content);
    if blocks.is_empty() {
        return content.to_string();
    }
    let summary = fold_summary(lang);
    // Folded blocks with only blank lines between them share one summary.
    let joined = |a: &Shown, b: &Shown| {
        a.fold
            && b.fold
            && content[a.range.end..b.range.start]
                .trim_matches(|c: char| c.is_whitespace() || c == '>')
                .is_empty()
    };
    let mut out = String::with_capacity(content.len() + 256);
    let mut at = 0;
    for (i, block) in blocks.iter().enumerate() {
        let prefix = &block.prefix;
        if i > 0 && joined(&blocks[i - 1], block) {
            out.push('\n');
            out.push_str(prefix);
        } else {
            out.push_str(&content[at..block.range.start]);
            out.push_str(prefix);
            if block.fold {
                out.push_str(&format!(
                    "<details class=\"recipe-fold\">\n{prefix}<summary>{summary}</summary>\n{prefix}\n{prefix}"
                ));
            }
        }
        let text = &content[block.range.clone()];
        match &block.session {
            Some(html) => out.push_str(&html.replace('\n', &format!("\n{prefix}"))),
            None => {
                let shown = match block.expected {
                    Some(transcript) => super::reader::block(text, prefix, transcript),
                    None => text.to_string(),
                };
                out.push_str(shown.trim_start().trim_end_matches('\n'));
            }
        }
        if block.fold && !blocks.get(i + 1).is_some_and(|next| joined(block, next)) {
            out.push_str(&format!("\n{prefix}\n{prefix}</details>"));
        }
        if text.ends_with('\n') {
            out.push('\n');
        }
        at = block.range.end;
    }
    out.push_str(&content[at..]);
    out
}

/// The folded and session blocks of a page, in order.
fn shown_blocks(content: &str) -> Vec<Shown> {
    let mut found = Vec::new();
    // The block being read, the prompt of a session, and its body so far.
    let mut open: Option<(Shown, Option<String>, String)> = None;
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES;
    for (event, range) in Parser::new_ext(content, options).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(_))) => {
                let line = content[range.start..].lines().next().unwrap_or_default();
                let raw = line.trim_start().trim_start_matches(['`', '~']).trim();
                let Some((info, _)) = parse_info(raw) else {
                    continue;
                };
                let flag = |k: &str| matches!(info.attrs.get(k), Some(AttrValue::Flag(true)));
                let pty = info.syntax == "console" && flag("pty");
                // Only a recipe's blocks hold matching syntax; an example of
                // the syntax itself (contributing) is shown as written.
                let recipe = info.attrs.contains_key("recipe");
                let expected = if !recipe {
                    None
                } else if info.syntax == "console" {
                    Some(true)
                } else {
                    flag("expect").then_some(false)
                };
                if !flag("fold") && !pty && expected.is_none() {
                    continue;
                }
                let line_start = content[..range.start].rfind('\n').map_or(0, |i| i + 1);
                let prefix: String = content[line_start..range.start]
                    .chars()
                    .map(|c| if c == '>' { '>' } else { ' ' })
                    .collect();
                let prompt = pty.then(|| {
                    info.attrs
                        .get("prompt")
                        .and_then(AttrValue::as_str)
                        .unwrap_or_default()
                        .to_string()
                });
                let shown = Shown {
                    range: line_start..range.end,
                    prefix,
                    fold: flag("fold"),
                    expected,
                    session: None,
                };
                open = Some((shown, prompt, String::new()));
            }
            Event::Text(text) => {
                if let Some((_, _, body)) = open.as_mut() {
                    body.push_str(&text);
                }
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some((mut shown, prompt, body)) = open.take() {
                    shown.session = prompt.map(|p| session_html(&body, &p));
                    found.push(shown);
                }
            }
            _ => {}
        }
    }
    found
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A key as keycaps: `Ctrl+a q` → `<kbd>Ctrl</kbd>+<kbd>a</kbd> <kbd>q</kbd>`.
fn keycaps(written: &str) -> String {
    written
        .split(' ')
        .map(|item| {
            item.split('+')
                .map(|k| format!("<kbd>{}</kbd>", escape(k)))
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Typed text with its keys as keycaps.
fn typed(text: &str) -> String {
    segments(text)
        .into_iter()
        .map(|s| match s {
            Segment::Text(t) => format!("<span class=\"recipe-typed\">{}</span>", escape(t)),
            Segment::Key { written, .. } => keycaps(written),
        })
        .collect()
}

/// A session as the terminal shows it.
fn session_html(body: &str, prompt: &str) -> String {
    let prompt = (!prompt.is_empty())
        .then(|| prompt_regex(prompt).ok())
        .flatten();
    let lines: Vec<&str> = body.lines().collect();
    let mut html = String::from("<pre class=\"recipe-session\"><code class=\"nohighlight\">");
    let mut started = false;
    for (i, line) in lines.iter().enumerate() {
        let last = i + 1 == lines.len();
        if !started {
            if let Some(command) = line.strip_prefix("$ ") {
                started = true;
                html.push_str(&format!(
                    "<span class=\"recipe-prompt\">$ </span><span class=\"recipe-typed\">{}</span>\n",
                    escape(command)
                ));
                continue;
            }
        }
        let exit_line = last && line.starts_with('[') && line.ends_with(']');
        if started && exit_line && line[1..line.len() - 1].parse::<i32>().is_ok() {
            continue;
        }
        let prompted = prompt
            .as_ref()
            .and_then(|re| re.find(line))
            .filter(|_| started);
        if let Some(m) = prompted {
            html.push_str(&format!(
                "<span class=\"recipe-prompt\">{}</span>{}\n",
                escape(m.as_str()),
                typed(&line[m.end()..])
            ));
        } else if started && crate::parse::session::only_keys(line) {
            html.push_str(&typed(line));
            html.push('\n');
        } else {
            html.push_str(&escape(line));
            html.push('\n');
        }
    }
    html.push_str("</code></pre>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_steps_are_collapsed_and_neighbours_share_one_summary() {
        let page = "# T\n\n```sh recipe=a\nls\n```\n\n```console recipe=a fold\n$ ls\nx\n```\n\n```text recipe=a expect fold\nx\n```\n\nEnd.\n";
        let out = present(page, "fr");
        assert_eq!(
            out.matches("<details class=\"recipe-fold\">").count(),
            1,
            "{out}"
        );
        assert_eq!(out.matches("</details>").count(), 1, "{out}");
        assert!(out.contains("<summary>Vérification</summary>"), "{out}");
        let details = out.find("<details").unwrap();
        assert!(out.find("```sh recipe=a\n").unwrap() < details, "{out}");
        assert!(
            out.find("```console recipe=a fold").unwrap() > details,
            "{out}"
        );
        assert!(out.find("</details>").unwrap() > out.find("expect fold").unwrap());
        assert!(out.ends_with("End.\n"), "{out}");
        assert!(present(page, "en").contains("<summary>Check</summary>"));
        // Nothing else moves.
        let plain = "# T\n\n```sh recipe=a\nls\n```\n";
        assert_eq!(present(plain, "fr"), plain);
    }

    #[test]
    fn folds_in_lists_keep_their_indentation() {
        let page = "- item\n\n  ```sh recipe=a fold\n  ls\n  ```\n\nafter\n";
        let out = present(page, "en");
        assert!(out.contains("\n  <summary>Check</summary>\n"), "{out:?}");
        assert!(out.contains("\n  </details>\n"), "{out:?}");
    }

    #[test]
    fn sessions_show_keycaps_and_no_plumbing() {
        let page = "```console recipe=a pty prompt=\"root@web1:~# \"\n$ lxc-console -n web1 -t 1\nType <Ctrl+a q> to exit\n<Enter>\nroot@web1:~# echo <b>\n<b>\nroot@web1:~# <Ctrl+a q>\n[0]\n```\n";
        let out = present(page, "en");
        assert!(!out.contains("```"), "{out}");
        assert!(
            out.contains("<span class=\"recipe-typed\">lxc-console -n web1 -t 1</span>"),
            "{out}"
        );
        assert!(out.contains("Type &lt;Ctrl+a q&gt; to exit\n"), "{out}");
        assert!(out.contains("\n<kbd>Enter</kbd>\n"), "{out}");
        assert!(out.contains("<span class=\"recipe-prompt\">root@web1:~# </span><span class=\"recipe-typed\">echo &lt;b&gt;</span>"), "{out}");
        assert!(
            out.contains("<kbd>Ctrl</kbd>+<kbd>a</kbd> <kbd>q</kbd>"),
            "{out}"
        );
        assert!(!out.contains("[0]"), "{out}");
        assert!(!out.contains("recipe="), "{out}");
    }
}
