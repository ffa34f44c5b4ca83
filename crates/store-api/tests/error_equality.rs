//! The stores' errors compare with `==`: by variant and fields, and a storage failure by
//! backend, kind, context and what its source says.

// Test code: a failed check is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use store_api::{
    AccountId, EngineError, InputError, LedgerError, SegmentError, SideEffectError, SnapshotError,
    StateError, StorageError, StorageErrorKind,
};

fn io(message: &str) -> std::io::Error {
    std::io::Error::other(message.to_owned())
}

#[test]
fn storage_errors_are_equal_when_they_say_the_same() {
    let disk_full = || {
        StorageError::new(
            "redb",
            StorageErrorKind::NoSpace,
            "committing",
            io("ENOSPC"),
        )
    };
    assert_eq!(disk_full(), disk_full());
    assert_ne!(
        disk_full(),
        disk_full().with_kind(StorageErrorKind::Io),
        "another kind"
    );
    assert_ne!(
        disk_full(),
        StorageError::new(
            "lmdb",
            StorageErrorKind::NoSpace,
            "committing",
            io("ENOSPC")
        ),
        "another backend"
    );
    assert_ne!(
        disk_full(),
        StorageError::new(
            "redb",
            StorageErrorKind::NoSpace,
            "committing",
            io("EDQUOT")
        ),
        "another source"
    );
    assert_ne!(
        disk_full(),
        StorageError::without_source("redb", StorageErrorKind::NoSpace, "committing"),
        "no source"
    );
}

#[test]
fn store_errors_compare_by_variant_and_fields() {
    assert_eq!(
        EngineError::SequenceGap {
            expected: 3,
            given: 5
        },
        EngineError::SequenceGap {
            expected: 3,
            given: 5
        }
    );
    assert_ne!(
        EngineError::SequenceGap {
            expected: 3,
            given: 5
        },
        EngineError::ConflictingBatch {
            expected: 3,
            given: 5
        }
    );
    let account = AccountId::new("shop", "cash").unwrap();
    assert_eq!(
        LedgerError::Overflow {
            account: account.clone()
        },
        LedgerError::Overflow { account }
    );
    let closed = || StorageError::without_source("sqlite", StorageErrorKind::Closed, "reading");
    assert_eq!(StateError::from(closed()), StateError::Storage(closed()));
    assert_eq!(
        StateError::from(SnapshotError::Truncated),
        StateError::Snapshot(SnapshotError::Truncated)
    );
    assert_eq!(
        SegmentError::from(closed()),
        SegmentError::Storage(closed())
    );
    assert_ne!(
        SideEffectError::from(closed()),
        SideEffectError::from(InputError::EmptyKey)
    );
}
