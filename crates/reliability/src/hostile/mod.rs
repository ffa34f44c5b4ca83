//! Hostile input: bad arguments for every public entry point ([`inputs`]) and bad
//! directories ([`dirs`]). Each must give its typed error, never a panic, and leave every
//! file as it was.

pub mod dirs;
pub mod inputs;

/// What a hostile-input run tried.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostileReport {
    /// Inputs tried, each checked for its error, for no panic and for unchanged files.
    pub inputs: usize,
}
