//! French typography for the rendered French pages: a narrow no-break space
//! (U+202F) before `;`, `!` and `?`, a no-break space (U+00A0) before `:`
//! and inside `« »`. Only the prose is touched: the Markdown is parsed with
//! mdBook's options and only the source of its text events is rewritten, so
//! code (inline or fenced), HTML, URLs and link targets stay as written.
//! Pure: text in, text out.

use std::ops::Range;

use mdbook_markdown::pulldown_cmark::{Event, LinkType, Tag, TagEnd};
use mdbook_markdown::{new_cmark_parser, MarkdownOptions};

const NNBSP: char = '\u{202F}';
const NBSP: char = '\u{A0}';

/// The space French wants before `c`, if it wants one.
fn space_before(c: char) -> Option<char> {
    match c {
        ';' | '!' | '?' => Some(NNBSP),
        ':' | '»' => Some(NBSP),
        _ => None,
    }
}

/// `markdown` with French spaces in its prose.
pub fn french(markdown: &str) -> String {
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    // Code blocks, autolinks and headings (whose ids come from their text,
    // so spaces there may change but none may be added) need care.
    let (mut code, mut autolink, mut heading) = (0usize, 0usize, 0usize);
    let mut soft_break: Option<Range<usize>> = None;
    let mut open_quote_before_break = false;
    let parser = new_cmark_parser(markdown, &MarkdownOptions::default());
    for (event, range) in parser.into_offset_iter() {
        let after_break = soft_break.take();
        match event {
            Event::Start(Tag::CodeBlock(_)) => code += 1,
            Event::End(TagEnd::CodeBlock) => code = code.saturating_sub(1),
            Event::Start(Tag::Link {
                link_type: LinkType::Autolink | LinkType::Email,
                ..
            }) => autolink += 1,
            Event::End(TagEnd::Link) if autolink > 0 => autolink -= 1,
            Event::Start(Tag::Heading { .. }) => heading += 1,
            Event::End(TagEnd::Heading(_)) => heading = heading.saturating_sub(1),
            Event::SoftBreak if code == 0 => {
                // A line break renders as a space: "«⏎mot" and "mot⏎?" too.
                if open_quote_before_break && heading == 0 {
                    edits.push((range.clone(), NBSP.to_string()));
                } else {
                    soft_break = Some(range.clone());
                }
            }
            Event::Text(_) if code == 0 && autolink == 0 => {
                let source = &markdown[range.clone()];
                let first = source.chars().next();
                if let (Some(space), Some(lines)) = (first.and_then(space_before), after_break) {
                    if heading == 0 {
                        edits.push((lines, space.to_string()));
                    }
                }
                let spaced = |c: Option<char>| c.is_none_or(char::is_whitespace);
                let fixed = fix(
                    source,
                    heading == 0,
                    spaced(markdown[..range.start].chars().next_back()),
                    spaced(markdown[range.end..].chars().next()),
                );
                open_quote_before_break = fixed.ends_with('«');
                if fixed != source {
                    edits.push((range, fixed));
                }
                continue;
            }
            _ => {}
        }
        open_quote_before_break = false;
    }
    let mut text = markdown.to_string();
    edits.sort_by_key(|(range, _)| std::cmp::Reverse(range.start));
    for (range, new) in edits {
        text.replace_range(range, &new);
    }
    text
}

/// One run of prose. Ordinary spaces before the marks become the right
/// no-break space; with `add`, one is also put inside `« »` where the text
/// has none (`spaced_before`/`spaced_after`: whether the source around the
/// run already has a space there, as a line break).
fn fix(source: &str, add: bool, spaced_before: bool, spaced_after: bool) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied();
        let previous = i.checked_sub(1).map(|p| chars[p]);
        match c {
            ' ' | NBSP | NNBSP => {
                // The space a mark wants, or an ordinary one left as it is.
                match next.and_then(space_before) {
                    Some(space) => out.push(space),
                    None if previous == Some('«') => out.push(NBSP),
                    None if c == ' ' && previous.is_some_and(|p| p.is_ascii_digit()) => {
                        out.push(after_a_number(&chars[..i], &chars[i + 1..]));
                    }
                    None => out.push(c),
                }
                continue;
            }
            '»' if add && previous.is_some_and(|p| !p.is_whitespace()) => out.push(NBSP),
            '»' if add && i == 0 && !spaced_before => out.push(NBSP),
            _ => {}
        }
        out.push(c);
        let unspaced = match next {
            Some(n) => !n.is_whitespace(),
            None => !spaced_after,
        };
        if c == '«' && add && unspaced {
            out.push(NBSP);
        }
    }
    out
}

/// The units a number keeps on its line, with a no-break space.
const UNITS: &[&str] = &[
    "%", "o", "Kio", "Mio", "Gio", "Tio", "ko", "Mo", "Go", "To", "octets", "ms", "µs", "ns", "s",
    "secondes", "minutes", "min", "h", "heures", "jours", "Mbit/s", "Gbit/s", "°C",
];

/// The space between `before`, which ends with a digit, and `rest`: a
/// narrow no-break space inside a number written in groups of three
/// (« 65 536 »: at most three digits before, exactly three after), a
/// no-break space before a unit (« 256 Mio »), else an ordinary space.
fn after_a_number(before: &[char], rest: &[char]) -> char {
    let word: String = rest.iter().take_while(|c| !c.is_whitespace()).collect();
    let lead = before
        .iter()
        .rev()
        .take_while(|c| c.is_ascii_digit())
        .count();
    let grouped_before = before.len() > lead && before[before.len() - lead - 1] == NNBSP;
    let group = (lead <= 3 || grouped_before)
        && word.chars().take_while(char::is_ascii_digit).count() == 3
        && !word.chars().nth(3).is_some_and(|c| c.is_ascii_digit());
    let unit = word.trim_end_matches(['.', ',', ';', ':', ')', '!', '?']);
    if group {
        NNBSP
    } else if UNITS.contains(&unit) {
        NBSP
    } else {
        ' '
    }
}

/// The same spaces in the `<main>` of a page mdBook rendered without
/// preprocessors (its 404 page): text between tags only, never inside
/// `pre`, `code`, `script` or `style`.
pub fn french_html(html: &str) -> String {
    let (Some(start), Some(end)) = (html.find("<main>"), html.rfind("</main>")) else {
        return html.to_string();
    };
    let mut out = String::from(&html[..start]);
    let mut raw = 0usize; // depth of pre/code/script/style
    let mut rest = &html[start..end];
    while !rest.is_empty() {
        if rest.starts_with('<') {
            let close = rest.find('>').map_or(rest.len(), |i| i + 1);
            let tag = &rest[..close];
            let name: String = tag
                .trim_start_matches(['<', '/'])
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect::<String>()
                .to_ascii_lowercase();
            if ["pre", "code", "script", "style"].contains(&name.as_str()) {
                if tag.starts_with("</") {
                    raw = raw.saturating_sub(1);
                } else {
                    raw += 1;
                }
            }
            out.push_str(tag);
            rest = &rest[close..];
        } else {
            let run = rest.find('<').unwrap_or(rest.len());
            if raw == 0 {
                out.push_str(&fix(&rest[..run], true, true, true));
            } else {
                out.push_str(&rest[..run]);
            }
            rest = &rest[run..];
        }
    }
    out.push_str(&html[end..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(text: &str) -> String {
        text.replace(NNBSP, "⍽").replace(NBSP, "~")
    }

    #[test]
    fn prose_gets_french_spaces() {
        for (markdown, want) in [
            (
                "Pourquoi ? Parce que ; enfin !",
                "Pourquoi⍽? Parce que⍽; enfin⍽!",
            ),
            ("Le principe : simple.", "Le principe~: simple."),
            ("Il dit « bonjour ».", "Il dit «~bonjour~»."),
            ("Il dit «bonjour».", "Il dit «~bonjour~»."),
            ("déjà\u{a0}? oui", "déjà⍽? oui"),
            ("*vraiment* ?", "*vraiment*⍽?"),
            ("« *mot* »", "«~*mot*~»"),
            ("«`code`»", "«~`code`~»"),
            ("mot\n? suite", "mot⍽? suite"),
            ("«\nmot »", "«~mot~»"),
            ("sans espace: rien ajouté", "sans espace: rien ajouté"),
        ] {
            assert_eq!(show(&french(markdown)), want, "{markdown:?}");
        }
    }

    #[test]
    fn numbers_keep_their_groups_and_units() {
        assert_eq!(
            show(&french("Une plage de 65 536 ids, 100 000 processus, 256 Mio et 5 s, 3 conteneurs, 12 345,5 et 2 %.")),
            "Une plage de 65⍽536 ids, 100⍽000 processus, 256~Mio et 5~s, 3 conteneurs, 12⍽345,5 et 2~%."
        );
        // A year and a count, or a group of four digits, are not one number.
        assert_eq!(show(&french("en 2009 1234 fois")), "en 2009 1234 fois");
        assert_eq!(show(&french("en 2009 123 fois")), "en 2009 123 fois");
        assert_eq!(show(&french("1 000 000 octets")), "1⍽000⍽000~octets");
        assert_eq!(show(&french("`65 536` en code")), "`65 536` en code");
    }

    #[test]
    fn code_html_urls_and_link_targets_are_left_alone() {
        for markdown in [
            "`a ; b ? c : d`\n",
            "```sh\necho « a » ; true ? x : y\n```\n",
            "    indented ; code ?\n",
            "<span title=\"a ; b ?\">x</span>\n",
            "<div>\nbloc : html ?\n</div>\n",
            "<https://example.org/a?b=c:d>\n",
            "[texte](https://example.org/?q=a%20:b \"titre ?\")\n",
        ] {
            assert_eq!(french(markdown), markdown, "{markdown:?}");
        }
        assert_eq!(
            show(&french("[un lien ?](page.md#x) : voilà")),
            "[un lien⍽?](page.md#x)~: voilà"
        );
    }

    #[test]
    fn html_text_outside_code() {
        let html = "<head><title>a ?</title></head><main><p>chapitres ; la <code>a ; b</code> fin !</p><pre>x ? y</pre></main> ?";
        assert_eq!(
            show(&french_html(html)),
            "<head><title>a ?</title></head><main><p>chapitres⍽; la <code>a ; b</code> fin⍽!</p><pre>x ? y</pre></main> ?"
        );
    }

    #[test]
    fn headings_keep_their_ids() {
        // Replacing a space keeps mdBook's id (both are whitespace to it);
        // adding one would not, so headings get replacements only.
        assert_eq!(
            show(&french("## Pourquoi ?\n\n## Le mot «x»\n")),
            "## Pourquoi⍽?\n\n## Le mot «x»\n"
        );
        assert_eq!(
            crate::check::links::id_from_content("Pourquoi\u{202F}?"),
            crate::check::links::id_from_content("Pourquoi ?")
        );
    }
}
