//! Exit codes, documented in one place (DESIGN §7).

use crate::outcome::{Outcome, Status};

/// Every recipe passed (or the command succeeded).
pub const OK: i32 = 0;
/// A recipe failed or timed out.
pub const FAILED: i32 = 1;
/// Usage, parse, check or setup error.
pub const ERROR: i32 = 2;
/// Interrupted by Ctrl-C or SIGTERM (128 + SIGINT, as shells do).
pub const INTERRUPTED: i32 = 130;

/// The exit code of a run: interrupted first, then an error (a recipe that
/// could not even try), then a failure, else success.
pub fn of_run(outcomes: &[Outcome], interrupted: bool) -> i32 {
    let any = |f: fn(&Status) -> bool| outcomes.iter().any(|o| f(&o.status));
    if interrupted || any(|s| *s == Status::Interrupted) {
        INTERRUPTED
    } else if any(|s| matches!(s, Status::Error(_))) {
        ERROR
    } else if any(|s| matches!(s, Status::Failed | Status::TimedOut)) {
        FAILED
    } else {
        OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::RunError;

    /// An outcome of `status` (the sinks' test builder; only the status
    /// matters here).
    fn outcome(status: Status) -> Outcome {
        crate::report::fake::outcome("a", status)
    }

    #[test]
    fn the_worst_outcome_decides() {
        let skipped = || outcome(Status::Skipped("no lxc".into()));
        let error = || outcome(Status::Error(RunError::Required("x".into())));
        let cases: Vec<(Vec<Outcome>, bool, i32)> = vec![
            (vec![], false, OK),
            (vec![outcome(Status::Passed), skipped()], false, OK),
            (
                vec![outcome(Status::Passed), outcome(Status::TimedOut)],
                false,
                FAILED,
            ),
            (vec![outcome(Status::Failed), error()], false, ERROR),
            (
                vec![error(), outcome(Status::Interrupted)],
                false,
                INTERRUPTED,
            ),
            (vec![outcome(Status::Passed)], true, INTERRUPTED),
        ];
        for (outcomes, interrupted, want) in &cases {
            assert_eq!(of_run(outcomes, *interrupted), *want, "{outcomes:?}");
        }
        assert_eq!((OK, FAILED, ERROR, INTERRUPTED), (0, 1, 2, 130));
    }
}
