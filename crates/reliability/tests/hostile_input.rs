//! Hostile input on every backend: the table of bad arguments for every entry point, the
//! same table against a read-only open, and bad directories for every persistent backend;
//! on PostgreSQL (a fresh schema per test on this binary's throwaway server) the table,
//! the read-only open and bad locations (URLs that try SQL injection) instead of bad
//! directories.
//!
//! The read-only-directory test proves nothing as root (root ignores permissions): built
//! as root it is generated `#[ignore]`d (see `build.rs`), and when run anyway it checks at
//! run time whether permissions are enforced and, if not, returns early saying so on
//! standard error, so it never counts as a pass by accident.

// Test code: a failed check is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use reliability::Failure;
use reliability::hostile::{dirs, inputs, locations};
use reliability::site::Site;
use store_api::Backend;

fn report<T>(what: &str, result: Result<T, Failure>) -> T {
    result.unwrap_or_else(|f| panic!("{what}: {f}"))
}

fn bad_inputs<B: Backend<Location: Site>>() {
    let root = tempfile::tempdir().expect("a temporary directory");
    let r = report("bad inputs", inputs::run::<B>(root.path()));
    eprintln!(
        "RELIABILITY-FIGURES hostile backend={} kind=inputs tried={}",
        B::NAME,
        r.inputs
    );
}

fn bad_directories<B: Backend<Location = Path>>() {
    let root = tempfile::tempdir().expect("a temporary directory");
    let exe = Path::new(env!("CARGO_BIN_EXE_crash_writer"));
    let mut tried = report("bad directories", dirs::run::<B>(root.path(), exe)).inputs;
    macro_rules! foreign {
        ($name:ident, $ty:ty) => {
            if stringify!($name) != B::NAME {
                let r = dirs::foreign_backend::<B>(
                    root.path(),
                    stringify!($name),
                    dirs::populate::<$ty>,
                );
                tried += report("another backend's database", r).inputs;
            }
        };
    }
    reliability::for_each_persistent_backend!(foreign);
    eprintln!(
        "RELIABILITY-FIGURES hostile backend={} kind=directories tried={tried}",
        B::NAME
    );
}

fn read_only_directory<B: Backend<Location = Path>>() {
    let root = tempfile::tempdir().expect("a temporary directory");
    if report(
        "probing permissions",
        dirs::permissions_ignored(root.path()),
    ) {
        eprintln!(
            "SKIPPED {}::read_only_directory: this process writes into read-only directories \
             (root or CAP_DAC_OVERRIDE), so the test would prove nothing",
            B::NAME
        );
        return;
    }
    let r = report("read-only directory", dirs::read_only::<B>(root.path()));
    eprintln!(
        "RELIABILITY-FIGURES hostile backend={} kind=read-only tried={}",
        B::NAME,
        r.inputs
    );
}

fn read_only_open<B: Backend<Location: Site>>() {
    let root = tempfile::tempdir().expect("a temporary directory");
    let r = report("read-only open", inputs::read_only::<B>(root.path()));
    eprintln!(
        "RELIABILITY-FIGURES hostile backend={} kind=read-only-open tried={}",
        B::NAME,
        r.inputs
    );
}

/// The read-only-open test of one backend: ignored, with the reason, on a backend that
/// declares `Capabilities::read_only_open` false (sled and fjall write whenever they open).
macro_rules! read_only_open_test {
    (sled, $ty:ty) => {
        #[test]
        #[ignore = "sled cannot open read-only (Capabilities::read_only_open is false)"]
        fn read_only_open_refuses_writes_and_changes_no_file() {
            super::read_only_open::<$ty>();
        }
    };
    (fjall, $ty:ty) => {
        #[test]
        #[ignore = "fjall cannot open read-only (Capabilities::read_only_open is false)"]
        fn read_only_open_refuses_writes_and_changes_no_file() {
            super::read_only_open::<$ty>();
        }
    };
    ($name:ident, $ty:ty) => {
        #[test]
        fn read_only_open_refuses_writes_and_changes_no_file() {
            assert!(<$ty as store_api::Backend>::capabilities().read_only_open);
            super::read_only_open::<$ty>();
        }
    };
}

macro_rules! hostile_tests {
    ($name:ident, $ty:ty) => {
        mod $name {
            #[test]
            fn bad_arguments_to_every_entry_point() {
                super::bad_inputs::<$ty>();
            }

            #[test]
            fn bad_directories() {
                super::bad_directories::<$ty>();
            }

            #[test]
            #[cfg_attr(
                reliability_as_root,
                ignore = "built as root: permissions are not enforced, see build.rs"
            )]
            fn read_only_directory() {
                super::read_only_directory::<$ty>();
            }

            read_only_open_test!($name, $ty);
        }
    };
}

reliability::for_each_persistent_backend!(hostile_tests);

#[test]
fn bad_arguments_to_the_reference_backend() {
    bad_inputs::<store_mem::MemBackend>();
}

/// PostgreSQL: the table and the read-only open on a fresh schema each (every relation of
/// the schema fingerprinted instead of the files), and bad locations instead of bad
/// directories.
mod postgres {
    use reliability::site::Site;
    use store_postgres::{PostgresBackend, scratch};

    #[test]
    fn bad_arguments_to_every_entry_point() {
        super::bad_inputs::<PostgresBackend>();
    }

    #[test]
    fn read_only_open_refuses_writes_and_changes_no_row() {
        assert!(<PostgresBackend as store_api::Backend>::capabilities().read_only_open);
        super::read_only_open::<PostgresBackend>();
    }

    /// The checks above are not vacuous: a fingerprint of the schema sees one engine
    /// write and one state flush, and the catalog sees a schema created outside the
    /// scratch names.
    #[test]
    fn the_fingerprint_and_the_catalog_see_a_change() {
        use store_api::{Backend, OpenOptions, StateStore, StoreEngine};
        let location = scratch::fresh_location().unwrap();
        let backend = PostgresBackend::open(&location, OpenOptions::default()).unwrap();
        let empty = location.fingerprint().unwrap();
        backend.engine().put_batch(&[(b"k", b"v")]).unwrap();
        let written = location.fingerprint().unwrap();
        let changes = empty.diff(&written);
        assert!(
            changes.iter().any(|c| c.starts_with("engine_kv ")),
            "{changes:?}"
        );
        let mut state = backend.state_store("p").unwrap();
        state.put(b"a", b"1").unwrap();
        assert!(written.diff(&location.fingerprint().unwrap()).is_empty());
        state.flush().unwrap();
        assert!(!written.diff(&location.fingerprint().unwrap()).is_empty());

        let catalog = reliability::pg::catalog(&location).unwrap();
        let name = format!("reliability_check_{}", std::process::id());
        let mut admin = reliability::pg::connect(&location).unwrap();
        admin
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .unwrap();
        let after = reliability::pg::catalog(&location).unwrap();
        admin.batch_execute(&format!("DROP SCHEMA {name}")).unwrap();
        assert_ne!(catalog, after);
    }

    #[test]
    fn bad_locations_are_refused_or_bound_and_change_nothing() {
        let base = scratch::fresh_location().expect("a scratch schema");
        let mut fresh = || {
            scratch::fresh_location()
                .map(|l| l.to_string())
                .map_err(|e| reliability::Failure(store_api::error_chain(&e)))
        };
        let r = super::report("bad locations", super::locations::run(&base, &mut fresh));
        eprintln!(
            "RELIABILITY-FIGURES hostile backend=postgres kind=locations tried={}",
            r.inputs
        );
    }
}
