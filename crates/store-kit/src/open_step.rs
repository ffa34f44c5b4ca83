//! The steps of opening a backend that can take long (an integrity check, a recovery after
//! a crash, a schema upgrade), each a `debug` event (target `store_kit::open`) with the
//! backend, the step and its time, so a slow open says where its time went. The facade's
//! `backend opened` event gives the total.
//!
//! With no subscriber listening for these events nothing is measured: the step runs as it
//! would without this module.

use std::time::Instant;

/// Runs `step` (named `name`) of opening `backend`, and when a subscriber listens emits a
/// `debug` event with its time in microseconds and whether it succeeded.
pub fn timed<T, E>(
    backend: &'static str,
    name: &'static str,
    step: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let started =
        tracing::enabled!(target: "store_kit::open", tracing::Level::DEBUG).then(Instant::now);
    let outcome = step();
    if let Some(started) = started {
        tracing::debug!(
            target: "store_kit::open",
            backend,
            step = name,
            ok = outcome.is_ok(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "open step done"
        );
    }
    outcome
}

/// Emits the `debug` event of something an open found and did (a recovery that ran, a
/// schema upgraded from an older version), for the steps whose outcome [`timed`] cannot
/// see.
pub fn note(backend: &'static str, what: &'static str) {
    tracing::debug!(target: "store_kit::open", backend, what, "open step note");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_an_event_with_its_time_only_when_listened_to() {
        assert_eq!(timed::<_, ()>("t", "quiet", || Ok(1)), Ok(1));
        let text = crate::test_capture::debug_events(|| {
            assert_eq!(
                timed::<u32, &str>("t", "checking", || Err("bad")),
                Err("bad")
            );
        });
        assert!(text.contains("open step done"), "{text}");
        assert!(text.contains("step=\"checking\""), "{text}");
        assert!(text.contains("ok=false"), "{text}");
        assert!(text.contains("elapsed_us="), "{text}");
    }
}
