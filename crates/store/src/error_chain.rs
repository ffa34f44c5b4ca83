//! Printing an error with its causes, once each.

use std::error::Error;

/// `err` and its chain of sources, one per line (`caused by: ...`), leaving out a cause
/// whose text an earlier line already holds (many errors print their source inline).
pub fn error_chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str("\n  caused by: ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("outer: {0}")]
        Inline(#[source] std::io::Error),
        #[error("outer")]
        Apart(#[source] std::io::Error),
    }

    #[test]
    fn each_cause_appears_once() {
        let io = || std::io::Error::other("disk on fire");
        assert_eq!(error_chain(&Outer::Inline(io())), "outer: disk on fire");
        assert_eq!(
            error_chain(&Outer::Apart(io())),
            "outer\n  caused by: disk on fire"
        );
    }
}
