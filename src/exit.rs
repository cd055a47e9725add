//! Exit codes, documented in one place (DESIGN §7).

/// Every recipe passed (or the command succeeded).
pub const OK: i32 = 0;
/// A recipe failed or timed out.
pub const FAILED: i32 = 1;
/// Usage, parse, check or setup error.
pub const ERROR: i32 = 2;
/// Interrupted by Ctrl-C or SIGTERM (128 + SIGINT, as shells do).
pub const INTERRUPTED: i32 = 130;
