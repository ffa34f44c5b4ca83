//! The harness every test body uses: a backend opened on its own fresh location (a
//! temporary directory, or a fresh store on a test server for a server backend) that can be
//! dropped and opened again, plus small helpers shared by the test modules.

use std::borrow::Borrow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use store_api::{
    Backend, Durability, LocationBuf, ManualClock, OpenError, OpenOptions, Timestamp, error_chain,
};
use tempfile::TempDir;

/// The name of the database directory inside an instance's temporary root. The backend is
/// opened on `root/db`, so `root` holds nothing else and any file a backend wrongly writes
/// next to its directory (a name escaping through `..`) is visible.
const DB_DIR: &str = "db";

/// A backend opened on a fresh location ([`Backend::scratch_location`] of a fresh
/// temporary directory, which lives as long as the instance).
pub struct Instance<B: Backend> {
    /// The open backend.
    pub backend: B,
    dir: TempDir,
    location: LocationBuf<B>,
    options: OpenOptions,
}

impl<B: Backend> Instance<B> {
    /// A fresh backend with the default options (durability `Immediate`).
    pub fn fresh() -> Self {
        Self::fresh_with(OpenOptions::default())
    }

    /// A fresh backend with durability `Relaxed`, for tests that write a lot and are not
    /// about durability.
    pub fn relaxed() -> Self {
        Self::fresh_with(relaxed_options())
    }

    /// A fresh backend (durability `Relaxed`) whose ledger stamps records with `clock`.
    pub fn with_clock(clock: &Arc<ManualClock>) -> Self {
        Self::fresh_with(relaxed_options().clock(clock.clone()))
    }

    /// A fresh backend opened with `options`.
    pub fn fresh_with(options: OpenOptions) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("conformance-{}-", B::NAME))
            .tempdir()
            .expect("creating a temporary directory");
        let location = B::scratch_location(&dir.path().join(DB_DIR)).unwrap_or_else(|e| {
            panic!(
                "making a scratch location for the {} backend failed: {}",
                B::NAME,
                error_chain(&e)
            )
        });
        let backend = B::open(location.borrow(), options.clone()).unwrap_or_else(|e| {
            panic!(
                "opening a fresh {} backend failed: {}",
                B::NAME,
                error_chain(&e)
            )
        });
        Instance {
            backend,
            dir,
            location,
            options,
        }
    }

    /// Where the backend is opened: its directory, or its store on a server.
    pub fn location(&self) -> &B::Location {
        self.location.borrow()
    }

    /// The directory the backend is opened on (for a backend kept in a directory: a
    /// server backend keeps nothing there).
    pub fn path(&self) -> PathBuf {
        self.dir.path().join(DB_DIR)
    }

    /// The temporary root holding the backend's directory (and nothing else).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The options the backend was opened with.
    pub fn options(&self) -> &OpenOptions {
        &self.options
    }

    /// Drops the backend and opens the same location again with the same options.
    ///
    /// Every store handle taken from the backend must have been dropped before.
    pub fn reopen(self) -> Self {
        let options = self.options.clone();
        self.reopen_with(options)
    }

    /// Drops the backend, runs `between` on its directory while nothing has it open, and
    /// opens the same location again with `options`.
    pub fn reopen_after<T>(
        self,
        options: OpenOptions,
        between: impl FnOnce(&Path) -> T,
    ) -> (Self, T) {
        let Instance {
            backend,
            dir,
            location,
            ..
        } = self;
        drop(backend);
        let seen = between(&dir.path().join(DB_DIR));
        let backend = B::open(location.borrow(), options.clone()).unwrap_or_else(|e| {
            panic!(
                "reopening the {} backend failed: {}",
                B::NAME,
                error_chain(&e)
            )
        });
        (
            Instance {
                backend,
                dir,
                location,
                options,
            },
            seen,
        )
    }

    /// Drops the backend and opens the same location again with `options`.
    pub fn reopen_with(self, options: OpenOptions) -> Self {
        self.reopen_after(options, |_| ()).0
    }

    /// Opens the same location a second time while this instance is alive (a second
    /// instance of a shared backend on the same store).
    pub fn open_again(&self) -> Result<B, OpenError> {
        self.open_again_with(self.options.clone())
    }

    /// Opens the same location a second time, with `options`, while this instance is
    /// alive.
    pub fn open_again_with(&self, options: OpenOptions) -> Result<B, OpenError> {
        B::open(self.location(), options)
    }
}

/// Default options with durability `Relaxed`.
pub fn relaxed_options() -> OpenOptions {
    OpenOptions::default().durability(Durability::Relaxed)
}

/// A manual clock standing at `micros` microseconds after the epoch.
pub fn manual_clock(micros: u64) -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp::from_micros(micros)))
}

/// `bytes` as an owned [`Bytes`].
pub fn b(bytes: &[u8]) -> Bytes {
    Bytes::copy_from_slice(bytes)
}

/// `(key, value)` as owned [`Bytes`].
pub fn kv(key: &[u8], value: &[u8]) -> (Bytes, Bytes) {
    (b(key), b(value))
}

/// A value one byte longer than [`MAX_VALUE_LEN`](store_api::MAX_VALUE_LEN).
pub fn oversized_value() -> Vec<u8> {
    vec![0x5A; store_api::MAX_VALUE_LEN + 1]
}

/// A key one byte longer than [`MAX_KEY_LEN`](store_api::MAX_KEY_LEN).
pub fn overlong_key() -> Vec<u8> {
    vec![0x4B; store_api::MAX_KEY_LEN + 1]
}

/// The [`KeyTooLong`](store_api::InputError::KeyTooLong) error for [`overlong_key`].
pub fn key_too_long() -> store_api::InputError {
    store_api::InputError::KeyTooLong {
        len: store_api::MAX_KEY_LEN + 1,
        max: store_api::MAX_KEY_LEN,
    }
}

/// The [`ValueTooLarge`](store_api::InputError::ValueTooLarge) error for
/// [`oversized_value`].
pub fn value_too_large() -> store_api::InputError {
    store_api::InputError::ValueTooLarge {
        len: store_api::MAX_VALUE_LEN + 1,
        max: store_api::MAX_VALUE_LEN,
    }
}

/// Names no backend may accept for a book or a state partition, each with the rule it
/// breaks.
pub fn invalid_names() -> Vec<(String, store_api::NameRule)> {
    use store_api::NameRule;
    let max = store_api::MAX_NAME_LEN;
    vec![
        (String::new(), NameRule::Empty),
        (".".into(), NameRule::DotName),
        ("..".into(), NameRule::DotName),
        ("/".into(), NameRule::ForbiddenChar('/')),
        ("../escape".into(), NameRule::ForbiddenChar('/')),
        ("a/b".into(), NameRule::ForbiddenChar('/')),
        ("\\".into(), NameRule::ForbiddenChar('\\')),
        ("..\\escape".into(), NameRule::ForbiddenChar('\\')),
        ("nul\0byte".into(), NameRule::ForbiddenChar('\0')),
        ("line\nbreak".into(), NameRule::ForbiddenChar('\n')),
        ("tab\there".into(), NameRule::ForbiddenChar('\t')),
        ("bell\u{7}".into(), NameRule::ForbiddenChar('\u{7}')),
        ("del\u{7f}".into(), NameRule::ForbiddenChar('\u{7f}')),
        ("c1\u{85}".into(), NameRule::ForbiddenChar('\u{85}')),
        ("n".repeat(max + 1), NameRule::TooLong { len: max + 1, max }),
    ]
}

/// Unusual names every backend must accept and keep apart: SQL quotes and comments, dots,
/// spaces, non-ASCII text, glob and format characters, and the longest allowed name.
pub fn unusual_valid_names() -> Vec<String> {
    vec![
        "x'; DROP TABLE t; --".into(),
        "Robert\"); DELETE FROM state; --".into(),
        "...".into(),
        ".hidden".into(),
        "a.b".into(),
        "with space".into(),
        "%s%n*?[]".into(),
        "élan-中文-🦀".into(),
        "a:b".into(),
        "CON".into(),
        "n".repeat(store_api::MAX_NAME_LEN),
    ]
}

/// The names of the entries directly inside `dir`, sorted.
pub fn dir_listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("listing a directory")
        .map(|entry| {
            entry
                .expect("reading a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Every file under `dir` (recursively) with its bytes, sorted by path.
pub fn dir_contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    collect_files(dir, &mut out);
    out.sort();
    out
}

/// Every file under `dir` (recursively) with its bytes, sorted by path, except the files a
/// read-only open may touch ([`store_kit::dir::is_reader_scratch`]): what a read-only
/// open leaves byte-identical.
pub fn data_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    dir_contents(dir)
        .into_iter()
        .filter(|(path, _)| !store_kit::dir::is_reader_scratch(path))
        .collect()
}

fn collect_files(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).expect("listing a directory") {
        let path = entry.expect("reading a directory entry").path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            let bytes = std::fs::read(&path).expect("reading a file");
            out.push((path, bytes));
        }
    }
}
