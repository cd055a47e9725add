//! Durations as the book and the command line write them (`90s`, `5m`,
//! `1m30s`, `500ms`), read and shown through the `humantime` crate.

use std::time::Duration;

/// Parses a positive duration: humantime's syntax (`90s`, `5m`, `1m30s`,
/// `500ms`, `1h`), or a bare number of seconds (`3`), as `timeout=` has
/// always accepted. Zero is no timeout, so it is refused.
pub fn parse(text: &str) -> Option<Duration> {
    let text = text.trim();
    let duration = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(text.parse().ok()?)
    } else {
        humantime::parse_duration(text).ok()?
    };
    (!duration.is_zero()).then_some(duration)
}

/// A duration for people: milliseconds below ten seconds, whole seconds
/// above (`350ms`, `1s 200ms`, `1m 30s`).
pub fn display(d: Duration) -> String {
    let rounded = if d < Duration::from_secs(10) {
        Duration::from_millis(d.as_millis() as u64)
    } else {
        Duration::from_secs(d.as_secs())
    };
    humantime::format_duration(rounded).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_book_syntax() {
        let cases: &[(&str, Option<u64>)] = &[
            ("90s", Some(90_000)),
            ("5m", Some(300_000)),
            ("1m30s", Some(90_000)),
            ("2m", Some(120_000)),
            ("250ms", Some(250)),
            ("1h", Some(3_600_000)),
            ("3", Some(3_000)),
            ("0", None),
            ("0s", None),
            ("1.5s", Some(1_500)),
            ("5x", None),
            ("s", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), want.map(Duration::from_millis), "{text:?}");
        }
    }

    #[test]
    fn displays_short_forms() {
        assert_eq!(display(Duration::from_millis(350)), "350ms");
        assert_eq!(display(Duration::from_secs(1)), "1s");
        assert_eq!(display(Duration::from_millis(1234)), "1s 234ms");
        assert_eq!(display(Duration::from_secs(120)), "2m");
        assert_eq!(display(Duration::from_millis(90_400)), "1m 30s");
        assert_eq!(display(Duration::ZERO), "0s");
    }
}
