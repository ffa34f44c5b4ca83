//! [`Site`]: where a store under test lives, as the tests see it from outside the backend —
//! the files of a directory, or the tables of a PostgreSQL schema — so that one test body
//! serves the embedded backends and the server backend alike.
//!
//! A test written for any backend asks `B::scratch_location` for a fresh store (a
//! directory inside its temporary directory, or a fresh schema on the test server), and
//! through this trait:
//! - fingerprints everything stored there, to prove a rejected call changed nothing
//!   ([`Site::fingerprint`]);
//! - passes the location to a child process on its command line ([`Site::to_arg`],
//!   [`Site::from_arg`]);
//! - waits, after killing a process that had the store open, until nothing of that process
//!   still holds the store ([`Site::wait_released`]).

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use store_api::StoreLocation;
use store_postgres::PostgresLocation;

use crate::Failure;
use crate::failure::OrFail;
use crate::fingerprint::Fingerprint;
use crate::pg;

/// A backend location the reliability tests can inspect and hand to a child process.
pub trait Site: StoreLocation {
    /// The location as one command-line argument of a child process: its text form
    /// ([`StoreLocation::to_text`]).
    fn to_arg(&self) -> Result<String, Failure> {
        self.to_text().ok_or_else(|| {
            Failure("the location has no text form to hand to a child process".into())
        })
    }

    /// The location [`to_arg`](Site::to_arg) gave.
    fn from_arg(arg: &OsStr) -> Result<Self::Owned, Failure> {
        let text = arg
            .to_str()
            .ok_or_else(|| Failure(format!("the location {arg:?} is not UTF-8")))?;
        Self::from_text(text).or_fail(format!("reading the location {text}"))
    }

    /// Everything stored at the location, each entry with its size and a hash of its
    /// contents: every file under a directory (see [`Fingerprint::of`]); every relation of
    /// a PostgreSQL schema with its rows (see [`pg::fingerprint`]).
    fn fingerprint(&self) -> Result<Fingerprint, Failure>;

    /// Waits, at most `within`, until no process that is gone (killed, and reaped by the
    /// caller) still holds the store, and returns how long that took. A directory is
    /// released by the kernel with the process: nothing to wait for. A server ends a dead
    /// client's sessions (rolling back its open transaction and releasing its locks) only
    /// once it notices the connection is gone: this waits until the server has no session
    /// of the store left, so call it only while this process holds none.
    fn wait_released(&self, within: Duration) -> Result<Duration, Failure>;
}

impl Site for Path {
    fn fingerprint(&self) -> Result<Fingerprint, Failure> {
        Fingerprint::of(self).or_fail("fingerprinting the directory")
    }

    fn wait_released(&self, _within: Duration) -> Result<Duration, Failure> {
        Ok(Duration::ZERO)
    }
}

/// Handed to a child process in the text form of [`StoreLocation::to_text`].
impl Site for PostgresLocation {
    fn fingerprint(&self) -> Result<Fingerprint, Failure> {
        pg::fingerprint(self)
    }

    fn wait_released(&self, within: Duration) -> Result<Duration, Failure> {
        pg::wait_sessions_gone(self, within)
    }
}
