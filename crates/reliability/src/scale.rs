//! How much work each test does: `RELIABILITY_SCALE` (an integer multiplier, default 1)
//! scales every iteration count for long runs.

/// The environment variable that multiplies every iteration count.
pub const SCALE_VAR: &str = "RELIABILITY_SCALE";

/// The multiplier from [`SCALE_VAR`]: a positive integer, 1 when unset or not a positive
/// integer.
pub fn scale() -> u64 {
    std::env::var(SCALE_VAR)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1)
}

/// `base` times the scale, saturating.
pub fn scaled(base: u64) -> u64 {
    base.saturating_mul(scale())
}

/// `base` times the scale, as a `usize`, saturating.
pub fn scaled_usize(base: usize) -> usize {
    usize::try_from(scaled(base as u64)).unwrap_or(usize::MAX)
}
