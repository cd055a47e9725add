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
