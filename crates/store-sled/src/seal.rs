//! sled's clean-close seal (`store_kit::seal`): how a damaged database is refused
//! **before** sled touches it.
//!
//! sled 0.34 recovers a truncated or partly overwritten log silently, to whatever prefix
//! still checks out (a database cut in half opens as an empty one), and its recovery
//! rewrites parts of the file. So when a backend closes cleanly, after sled has shut down
//! and released its files, it writes `<dir>/sled.seal`: every file under `<dir>/sled` with
//! its length and a 64-bit checksum of its bytes. The next open verifies the seal before
//! starting sled and refuses any difference with [`OpenError`](store_api::OpenError)`::Corrupted`,
//! leaving the files as they were; then it removes the seal, so a crash (no clean close,
//! no seal) is recovered by sled as usual.

use std::time::Duration;

use store_kit::seal::Seal;

use crate::{BACKEND_NAME, SLED_SUBDIR};

/// The seal file, beside the backend's marker and lock.
pub(crate) const SEAL_FILE: &str = "sled.seal";

/// The temporary file the seal is written through (see `write_atomically`).
pub(crate) const SEAL_TEMP_FILE: &str = ".sled.seal.tmp";

/// What sled's seal covers, and how. Its file format is the one the seal had before it
/// moved to `store_kit` (header `store-sled seal v1`): seals written by earlier builds
/// still verify.
pub(crate) static SEAL: Seal = Seal {
    backend: BACKEND_NAME,
    file: SEAL_FILE,
    temp_file: SEAL_TEMP_FILE,
    header: "store-sled seal v1",
    covers: SLED_SUBDIR,
    // sled locks its log file while a database is open.
    engine_lock: "db",
    release_wait: Duration::from_secs(10),
    unsealed_note: "no seal of a clean close (a new store, or one not closed cleanly): sled \
                    recovers from its log",
};
