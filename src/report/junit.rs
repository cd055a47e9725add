//! JUnit XML, the report format CI systems read: one test suite per book
//! language, one test case per recipe.

use std::path::Path;

use quick_xml::escape::escape;

use crate::outcome::{Outcome, Status, Tally};

/// Writes the outcomes as JUnit XML to `path`.
pub fn write_junit(path: &Path, outcomes: &[Outcome]) -> std::io::Result<()> {
    let mut langs: Vec<&str> = outcomes.iter().map(|o| o.lang.as_str()).collect();
    langs.sort();
    langs.dedup();
    let mut xml =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"recipes\">\n");
    for lang in langs {
        let cases: Vec<&Outcome> = outcomes.iter().filter(|o| o.lang == lang).collect();
        let tally = Tally::of(cases.iter().copied());
        let time: f64 = cases.iter().map(|o| o.duration.as_secs_f64()).sum();
        xml.push_str(&format!(
            "  <testsuite name=\"recipes ({lang})\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{time:.3}\">\n",
            tally.total,
            tally.failed,
            tally.errors + tally.interrupted,
            tally.skipped,
        ));
        for o in cases {
            xml.push_str(&format!(
                "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{}\" time=\"{:.3}\"",
                escape(o.id.as_str()),
                escape(o.page.as_str()),
                escape(o.location.path.display().to_string().as_str()),
                o.location.line,
                o.duration.as_secs_f64()
            ));
            let body = match (&o.status, &o.failure) {
                (Status::Passed, _) => None,
                (Status::Skipped(reason), _) => Some(format!(
                    "      <skipped message=\"{}\"/>\n",
                    escape(reason.as_str())
                )),
                (Status::Error(reason), _) => Some(format!(
                    "      <error message=\"{}\"/>\n",
                    escape(reason.as_str())
                )),
                (status, Some(f)) => {
                    let mut detail = format!("{}: {}\n{}\n", f.step, f.command, f.message);
                    if let Some(expected) = &f.expected {
                        detail.push_str(&format!("--- expected\n{}\n", expected.join("\n")));
                    }
                    if let Some(actual) = &f.actual {
                        detail.push_str(&format!("--- actual\n{actual}\n"));
                    } else if !f.output.is_empty() {
                        detail.push_str(&format!("--- output\n{}\n", f.output));
                    }
                    let tag = if *status == Status::Interrupted {
                        "error"
                    } else {
                        "failure"
                    };
                    Some(format!(
                        "      <{tag} message=\"{}: {}\" type=\"{}\">{}</{tag}>\n",
                        f.step,
                        escape(f.message.as_str()),
                        status.as_str(),
                        escape(detail.as_str())
                    ))
                }
                (status, None) => Some(format!("      <error message=\"{}\"/>\n", status.as_str())),
            };
            match body {
                None => xml.push_str("/>\n"),
                Some(body) => {
                    xml.push_str(">\n");
                    xml.push_str(&body);
                    xml.push_str("    </testcase>\n");
                }
            }
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    std::fs::write(path, xml)
}
