//! The conformance suite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// Asserts that an expression matches a pattern, printing the value when it does not.
macro_rules! assert_matches {
    ($value:expr, $pattern:pat $(if $guard:expr)? $(,)?) => {
        match $value {
            $pattern $(if $guard)? => {}
            ref other => panic!(
                "expected {}, got {:?}",
                stringify!($pattern $(if $guard)?),
                other
            ),
        }
    };
}

pub mod engine;
pub mod harness;
pub mod state;
pub mod side_effects;
