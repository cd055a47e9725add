//! JUnit XML, the report format CI systems read, written with quick-junit
//! (nextest's crate): one test suite per book language, one test case per
//! recipe run, its provenance as properties. Text from steps may hold any
//! bytes: quick-junit drops ANSI escapes and the control characters XML
//! 1.0 forbids, and the noncharacters it also forbids are replaced here.

use std::path::Path;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::event::{Event, EventSink, Gathered, Rank};
use crate::outcome::{Outcome, Status};

/// Text that XML 1.0 can hold (quick-junit removes the rest of the
/// control characters).
fn xml_text(text: &str) -> String {
    text.replace(['\u{fffe}', '\u{ffff}'], "\u{fffd}")
}

fn properties(o: &Outcome) -> Vec<Property> {
    let p = &o.provenance;
    [
        ("kernel", p.kernel.clone()),
        ("lxc", p.lxc.clone()),
        ("fixture", p.fixture.clone()),
        ("fixture_digest", p.fixture_digest.clone()),
        ("distro", p.distro.clone()),
        ("cgroup", p.cgroup.clone()),
        ("lsm", p.lsm.join(",")),
        ("tool", p.tool.clone()),
    ]
    .into_iter()
    .map(|(k, v)| Property::new(k, xml_text(&v)))
    .collect()
}

/// `many` when the same recipe ran on several fixtures (a matrix): then the
/// name carries the fixture.
fn test_case(o: &Outcome, many: bool) -> TestCase {
    let status = match (&o.status, &o.failure) {
        (Status::Passed, _) => TestCaseStatus::success(),
        (Status::Skipped(reason), _) => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(xml_text(reason));
            s
        }
        (Status::Error(reason), None) => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
            s.set_message(xml_text(&reason.to_string()))
                .set_type("error");
            s
        }
        (status, failure) => {
            let kind = match status {
                Status::Failed | Status::TimedOut => NonSuccessKind::Failure,
                _ => NonSuccessKind::Error,
            };
            let mut s = TestCaseStatus::non_success(kind);
            s.set_type(status.as_str());
            if let Some(f) = failure {
                let mut detail = format!("{}: {}\n{}\n", f.step, f.command, f.message);
                if let Some(expected) = &f.expected {
                    detail.push_str(&format!("--- expected\n{}\n", expected.join("\n")));
                }
                if let Some(actual) = &f.actual {
                    detail.push_str(&format!("--- actual\n{actual}\n"));
                } else if !f.output.is_empty() {
                    detail.push_str(&format!("--- output\n{}\n", f.output));
                }
                s.set_message(xml_text(&format!("{}: {}", f.step, f.message)))
                    .set_description(xml_text(&detail));
            } else {
                s.set_message(status.as_str());
            }
            s
        }
    };
    let mut name = if many {
        format!("{} ({})", o.id, o.fixture)
    } else {
        o.id.clone()
    };
    if o.attempt > 1 {
        name.push_str(&format!(" [attempt {}]", o.attempt));
    }
    let mut case = TestCase::new(xml_text(&name), status);
    case.set_classname(xml_text(&o.page))
        .set_time(o.duration)
        .add_properties(properties(o));
    case.extra.insert(
        "file".into(),
        xml_text(&o.location.path.display().to_string()).into(),
    );
    case.extra
        .insert("line".into(), o.location.line.to_string().into());
    case
}

/// The outcomes as JUnit XML.
pub fn junit_xml(outcomes: &[Outcome]) -> Result<String, quick_junit::SerializeError> {
    let mut langs: Vec<&str> = outcomes.iter().map(|o| o.lang.as_str()).collect();
    langs.sort();
    langs.dedup();
    let mut report = Report::new("recipes");
    for lang in langs {
        let mut suite = TestSuite::new(format!("recipes ({lang})"));
        let cases: Vec<&Outcome> = outcomes.iter().filter(|o| o.lang == lang).collect();
        let many = |o: &Outcome| cases.iter().filter(|c| c.id == o.id).count() > 1;
        suite.add_test_cases(cases.iter().map(|o| test_case(o, many(o))));
        report.add_test_suite(suite);
    }
    report.to_string()
}

/// Writes the outcomes as JUnit XML to `path` (aside, then renamed).
pub fn write_junit(path: &Path, outcomes: &[Outcome]) -> std::io::Result<()> {
    let xml = junit_xml(outcomes).map_err(std::io::Error::other)?;
    crate::fsutil::write_atomically(path, xml.as_bytes()).map_err(std::io::Error::other)
}

/// The JUnit sink: gathers the outcomes and writes the report when the run
/// finishes; [`Junit::written`] says whether it could.
pub struct Junit {
    path: std::path::PathBuf,
    gathered: Gathered,
    written: std::sync::Mutex<std::io::Result<()>>,
}

impl Junit {
    pub fn new(path: &Path, rank: Rank) -> Junit {
        Junit {
            path: path.to_path_buf(),
            gathered: Gathered::new(rank),
            written: std::sync::Mutex::new(Ok(())),
        }
    }

    /// Whether the report was written (true before the run finished).
    pub fn written(self) -> std::io::Result<()> {
        self.written.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

impl EventSink for Junit {
    fn event(&self, event: &Event) {
        self.gathered.hear(event);
        if let Event::RunFinished(_) = event {
            let written = write_junit(&self.path, &self.gathered.take());
            *self.written.lock().unwrap_or_else(|e| e.into_inner()) = written;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::event::Summary;
    use crate::report::fake;

    #[test]
    fn the_sink_writes_when_the_run_finishes_in_the_plan_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.xml");
        let sink = Junit::new(
            &path,
            Box::new(|o: &Outcome| if o.id == "first" { 0 } else { 1 }),
        );
        let outcomes = [
            fake::failed("second"),
            fake::outcome("first", Status::Passed),
        ];
        for o in &outcomes {
            sink.event(&Event::RecipeFinished(Box::new(o.clone())));
        }
        assert!(!path.exists(), "written before the run finished");
        sink.event(&Event::RunFinished(Summary::of(&outcomes)));
        sink.written().unwrap();
        let xml = std::fs::read_to_string(&path).unwrap();
        let first = xml.find("name=\"first\"").unwrap();
        let second = xml.find("name=\"second\"").unwrap();
        assert!(first < second, "{xml}");
        assert!(
            xml.contains("book/fr/src/p.md:21: the output differs"),
            "{xml}"
        );
    }

    #[test]
    fn a_report_that_cannot_be_written_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Junit::new(&dir.path().join("no/such/dir/j.xml"), Box::new(|_| 0));
        sink.event(&Event::RunFinished(Summary::of(&[])));
        assert!(sink.written().is_err());
    }
}
