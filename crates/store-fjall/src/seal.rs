//! fjall's clean-close seal (`store_kit::seal`): how a damaged database is refused
//! **before** fjall touches it.
//!
//! fjall 3's journal recovery cannot tell a journal cut short or damaged on disk from the
//! torn tail a crash leaves: it replays the whole batches before the damage and opens, so
//! the batches after it (acknowledged ones included) are gone without an error, and a
//! journal cut to 0 bytes opens as an empty database. So when a backend closes cleanly,
//! after fjall has shut down and released its files, it writes `<dir>/fjall.seal`: every
//! file under `<dir>/fjall` with its length and a 64-bit checksum of its bytes. The next
//! open verifies the seal before starting fjall and refuses any difference with
//! [`OpenError`](store_api::OpenError)`::Corrupted`, leaving the files as they were; then
//! it removes the seal, so a crash (no clean close, no seal) is recovered by fjall as
//! usual.

use std::time::Duration;

use store_kit::seal::Seal;

use crate::{BACKEND_NAME, FJALL_SUBDIR};

/// The seal file, beside the backend's marker and lock.
pub(crate) const SEAL_FILE: &str = "fjall.seal";

/// The temporary file the seal is written through (see `write_atomically`).
pub(crate) const SEAL_TEMP_FILE: &str = ".fjall.seal.tmp";

/// What fjall's seal covers, and how.
pub(crate) static SEAL: Seal = Seal {
    backend: BACKEND_NAME,
    file: SEAL_FILE,
    temp_file: SEAL_TEMP_FILE,
    header: "store-fjall seal v1",
    covers: FJALL_SUBDIR,
    // fjall holds an advisory lock on `<fjall>/lock` until its database and every
    // keyspace handle are dropped (its worker threads are joined before).
    engine_lock: "lock",
    release_wait: Duration::from_secs(10),
    unsealed_note: "no seal of a clean close (a new store, or one not closed cleanly): fjall \
                    recovers from its journal",
};
