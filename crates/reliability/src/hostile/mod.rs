//! Hostile input: bad arguments for every public entry point ([`inputs`]), bad
//! directories ([`dirs`]) and bad PostgreSQL locations ([`locations`]). Each must give its
//! typed error, never a panic, and leave every file (or every table) as it was.

pub mod dirs;
pub mod inputs;
pub mod locations;

/// What a hostile-input run tried.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostileReport {
    /// Inputs tried, each checked for its error, for no panic and for unchanged files.
    pub inputs: usize,
}
