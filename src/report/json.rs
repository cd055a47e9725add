//! The JSON-lines sink: each event, one line of stdout, as `serde_json`
//! writes the [`Event`] (keys in sorted order, as the contract has always
//! had them).

use std::io::Write;
use std::sync::Mutex;

use super::event::{Event, EventSink};

/// Writes one JSON object per event to `out` (stdout for `--format json`).
pub struct JsonLines<W: Write + Send> {
    out: Mutex<W>,
}

impl<W: Write + Send> JsonLines<W> {
    pub fn new(out: W) -> Self {
        JsonLines {
            out: Mutex::new(out),
        }
    }

    /// What was written (tests).
    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.out.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

/// One event as its JSON line, without the newline. Through a `Value`, so
/// that keys come sorted, byte for byte the lines of earlier versions.
pub fn line(event: &Event) -> String {
    serde_json::to_value(event)
        .map(|value| value.to_string())
        .unwrap_or_default()
}

impl<W: Write + Send> EventSink for JsonLines<W> {
    fn event(&self, event: &Event) {
        let mut text = line(event);
        text.push('\n');
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;
    use crate::report::event::Summary;
    use crate::report::fake;

    #[test]
    fn each_event_is_one_line_that_reads_back_as_an_event() {
        let sink = JsonLines::new(Vec::new());
        let mut multiline = fake::failed("r");
        multiline.failure.as_mut().unwrap().output = "a\nb\n".into();
        for event in [
            Event::FixtureBuildProgress {
                fixture: "d".into(),
                line: "I: Validating \"quoted\"".into(),
            },
            Event::RecipeFinished(Box::new(multiline)),
            Event::RunFinished(Summary::of(&[fake::outcome("a", Status::Passed)])),
        ] {
            sink.event(&event);
        }
        let written = String::from_utf8(sink.into_inner()).unwrap();
        let lines: Vec<&str> = written.lines().collect();
        assert_eq!(lines.len(), 3, "{written}");
        for l in lines {
            let _: Event = serde_json::from_str(l).unwrap();
        }
    }
}
