//! The text of a `console` block: `$ ` lines are commands, the lines after
//! each are its expected output, and a last line `[N]` its exit code.

use crate::model::TranscriptEntry;

/// Splits a transcript into commands and their expected output.
pub fn parse(
    fence_line: usize,
    body: &str,
    problem: &mut impl FnMut(String),
) -> Vec<TranscriptEntry> {
    let mut entries: Vec<TranscriptEntry> = Vec::new();
    let mut reported = false;
    for (i, line) in body.lines().enumerate() {
        let line_no = fence_line + 1 + i;
        // `$ x (literal)` is output that looks like a command.
        let command = line
            .strip_prefix("$ ")
            .filter(|_| !line.ends_with(crate::matcher::LITERAL));
        if let Some(command) = command {
            entries.push(TranscriptEntry {
                line: line_no,
                command: command.to_string(),
                expected: Vec::new(),
                exit: 0,
            });
        } else if let Some(entry) = entries.last_mut() {
            entry.expected.push(line.to_string());
        } else if !reported {
            reported = true;
            problem(format!(
                "malformed transcript: line {line_no} is output before the first command (commands start with `$ `)"
            ));
        }
    }
    if entries.is_empty() && !reported {
        problem("malformed transcript: no command (commands start with `$ `)".into());
    }
    for entry in &mut entries {
        if let Some(code) = entry.expected.last().and_then(|l| exit_line(l)) {
            entry.exit = code;
            entry.expected.pop();
        }
    }
    entries
}

/// A transcript's last output line `[N]`.
fn exit_line(line: &str) -> Option<i32> {
    line.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use crate::parse::parse_page;
    use std::path::Path;

    fn page(text: &str) -> (Vec<crate::model::Recipe>, Vec<String>) {
        let (recipes, problems) = parse_page(Path::new("p.md"), "p.md", "fr", text);
        (recipes, problems.iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn transcripts() {
        let (recipes, problems) =
            page("```console recipe=a\n$ echo hi\nhi\n$ false\n[1]\n$ true\n```\n");
        assert!(problems.is_empty(), "{problems:?}");
        let t = &recipes[0].steps[0].transcript();
        assert_eq!(t.len(), 3);
        assert_eq!(
            (
                t[0].line,
                t[0].command.as_str(),
                t[0].expected.clone(),
                t[0].exit
            ),
            (2, "echo hi", vec!["hi".to_string()], 0)
        );
        assert_eq!((t[1].exit, t[1].expected.len()), (1, 0));
        assert_eq!(t[2].exit, 0);
    }

    #[test]
    fn literal_lines_are_output() {
        let (recipes, problems) =
            page("```console recipe=a\n$ cat x\n$ y (literal)\n[1] (literal)\n```\n");
        assert!(problems.is_empty(), "{problems:?}");
        let t = &recipes[0].steps[0].transcript();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].expected, ["$ y (literal)", "[1] (literal)"]);
        assert_eq!(t[0].exit, 0);
    }
}
