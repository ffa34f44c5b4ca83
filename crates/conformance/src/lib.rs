//! The conformance suite: every rule of `docs/contract.md` sections 0 to 7 and 9 as a
//! test, written once and generated for every backend. Each test's doc comment starts with
//! the contract section it checks (`§3.3: ...` is section 3.3 of `docs/contract.md`).
//!
//! Each test body is a plain `pub fn rule<B: Backend>()` in the module of its store
//! ([`engine`], [`state`], [`side_effects`], [`ledger`], [`segments`], [`backend`]), in
//! [`listings`] (the listings of every store), or in [`shared`] (several instances on one
//! store). The [`suite!`] macro holds the one list of those bodies and expands it into one
//! `#[test]` per body for a backend:
//!
//! ```text
//! // crates/store-mem/tests/conformance.rs
//! conformance::suite!(mem, store_mem::MemBackend, persistent = false);
//! ```
//!
//! gives tests named `mem::engine::range_scan_end_inclusive`, `mem::ledger::commit_check_order`,
//! ... (`<backend>::<store>::<rule>`). Tests that need a capability the backend lacks
//! (reopening a directory, an exclusive directory lock, a store shared by several
//! instances) are generated with `#[ignore]`, so they show as ignored, never as passed;
//! `<backend>::backend::capabilities_match_suite_flags` checks that the macro's flags are
//! the backend's declared [`Capabilities`].
//!
//! Every test opens its own backend on its own fresh location through
//! [`harness::Instance`] (a temporary directory, or a fresh store on a test server for a
//! server backend), which can also drop the backend and open the location again.
//! Tests are deterministic (fixed seeds for the model-based tests, manual clocks for the
//! ledger) and bounded (no sleeps; thread tests join a fixed amount of work).
//!
//! [`Capabilities`]: store_api::Capabilities
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// Asserts that a value matches a pattern (with an optional guard), printing the value when
/// it does not.
macro_rules! assert_matches {
    ($value:expr, $pattern:pat $(if $guard:expr)? $(,)?) => {
        match $value {
            $pattern $(if $guard)? => {}
            ref other => panic!(
                "expected {}, got {:?}",
                stringify!($pattern $(if $guard)?),
                other
            ),
        }
    };
}

pub mod backend;
pub mod damage;
pub mod engine;
pub mod harness;
pub mod ledger;
pub mod listings;
pub mod other_process;
pub mod segments;
pub mod shared;
pub mod side_effects;
pub mod state;

/// Generates the whole conformance suite for one backend: one `#[test]` per rule, named
/// `<name>::<store>::<rule>`.
///
/// ```text
/// conformance::suite!(mem, store_mem::MemBackend, persistent = false);
/// conformance::suite!(redb, store_redb::RedbBackend, persistent = true, exclusive_open = true);
/// conformance::suite!(postgres, store_postgres::PostgresBackend,
///     persistent = true, exclusive_open = false, shared = true);
/// ```
///
/// - `persistent = true | false`: whether data survives a reopen
///   ([`Capabilities::persistent`](store_api::Capabilities::persistent)). With `false`, the
///   reopen and bad-directory tests are generated `#[ignore]`d.
/// - `exclusive_open = true | false` (optional, defaults to the value of `persistent`):
///   whether a second open of a directory fails with `OpenError::Locked`
///   ([`Capabilities::exclusive_open`](store_api::Capabilities::exclusive_open)). With
///   `false`, the lock test is generated `#[ignore]`d.
/// - `shared = true | false` (optional, defaults to `false`): whether several instances
///   on one store behave as one store
///   ([`Capabilities::shared`](store_api::Capabilities::shared)). A shared backend is not
///   kept in a directory, so the bad-directory tests (which need `persistent = true` and
///   `shared = false`) are generated `#[ignore]`d for it.
///
/// - `read_only = true | false` (optional, defaults to the value of `persistent`; give all
///   four flags to set it): whether the backend opens read-only
///   ([`Capabilities::read_only_open`](store_api::Capabilities::read_only_open)). With
///   `false`, the read-only tests are generated `#[ignore]`d.
///
/// `<name>::backend::capabilities_match_suite_flags` fails when the flags differ from
/// `B::capabilities()`. The backend type is resolved from the invoking module (its imports
/// are visible inside the generated modules).
#[macro_export]
macro_rules! suite {
    ($name:ident, $backend:ty, persistent = $persistent:tt $(,)?) => {
        $crate::suite!(
            $name,
            $backend,
            persistent = $persistent,
            exclusive_open = $persistent,
            shared = false
        );
    };
    ($name:ident, $backend:ty, persistent = $persistent:tt, exclusive_open = $exclusive:tt $(,)?) => {
        $crate::suite!(
            $name,
            $backend,
            persistent = $persistent,
            exclusive_open = $exclusive,
            shared = false
        );
    };
    (
        $name:ident,
        $backend:ty,
        persistent = $persistent:tt,
        exclusive_open = $exclusive:tt,
        shared = $shared:tt $(,)?
    ) => {
        $crate::suite!(
            $name,
            $backend,
            persistent = $persistent,
            exclusive_open = $exclusive,
            shared = $shared,
            read_only = $persistent
        );
    };
    (
        $name:ident,
        $backend:ty,
        persistent = $persistent:tt,
        exclusive_open = $exclusive:tt,
        shared = $shared:tt,
        read_only = $read_only:tt $(,)?
    ) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            /// The backend under test.
            type SuiteBackend = $backend;

            mod engine {
                $crate::__suite_tests! { engine, $persistent, $exclusive, $shared;
                    always: [
                        empty_key_rejected,
                        max_key_len_accepted,
                        key_too_long_rejected,
                        max_value_len_accepted,
                        value_too_large_rejected,
                        empty_value_round_trips,
                        sequence_starts_at_one_and_is_contiguous,
                        empty_batch_writes_nothing,
                        repeated_key_last_wins,
                        large_batches_keep_last_wins_and_every_pair,
                        delete_missing_key_is_fine,
                        get_many_in_input_order,
                        range_scan_end_inclusive,
                        range_scan_empty_end_is_unbounded,
                        range_scan_empty_start_from_first_key,
                        range_scan_start_after_end_gives_nothing,
                        range_scan_limit,
                        range_scan_reverse_returns_last_keys_descending,
                        range_scan_ff_keys,
                        batch_log_records_mutations_in_order,
                        prune_batch_log_removes_only_older_entries,
                        batches_are_atomic_for_concurrent_readers,
                        concurrent_writers_get_distinct_contiguous_seqs,
                        usable_as_dyn,
                        model_random_operations,
                        write_batch_mixed_last_mutation_wins,
                        write_batch_empty_writes_nothing,
                        write_batch_bad_input_rejected,
                        write_batch_atomic_for_concurrent_readers,
                        apply_batch_replicates_the_leader,
                        apply_batch_gap_refused_nothing_changed,
                        apply_batch_conflicting_batch_refused_nothing_changed,
                        apply_batch_identical_reapply_accepted,
                        apply_batch_of_pruned_applied_batch_refused,
                        apply_batch_bad_input_rejected,
                        apply_batch_races_decide_each_number_once,
                        wait_for_sequence_returns_at_once_when_a_later_batch_exists,
                        wait_for_sequence_woken_by_a_commit,
                        wait_for_sequence_times_out_without_a_commit,
                    ]
                    persistent: [
                        sequence_survives_reopen_after_full_prune,
                        apply_batch_across_reopen,
                    ]
                    directory: []
                    exclusive: []
                    shared: []
                }
            }

            mod state {
                $crate::__suite_tests! { state, $persistent, $exclusive, $shared;
                    always: [
                        empty_key_rejected,
                        max_key_len_accepted,
                        key_too_long_rejected,
                        value_too_large_rejected,
                        empty_value_round_trips,
                        invalid_partition_names_rejected,
                        unusual_partition_names_round_trip,
                        get_put_delete_contains,
                        get_or_insert,
                        len_and_is_empty,
                        size_bytes_exact,
                        prefix_scan_ascending,
                        prefix_scan_empty_prefix_matches_all,
                        prefix_scan_ff_prefix,
                        range_scan_end_exclusive,
                        range_scan_empty_or_inverted_gives_nothing,
                        range_scan_bounds_open_ends,
                        range_scan_bounds_included_and_excluded,
                        snapshot_restore_replaces_whole_state,
                        snapshot_bytes_restore_into_other_partition,
                        snapshot_bytes_are_portable_across_backends,
                        damaged_snapshot_bytes_rejected,
                        partitions_are_isolated,
                        partition_in_use,
                        typed_helpers,
                        usable_as_box_dyn,
                        model_random_operations,
                    ]
                    persistent: [
                        flush_then_reopen_restores_exact_state,
                        flushed_state_intact_after_later_writes,
                        restore_then_flush_survives_reopen,
                    ]
                    directory: []
                    exclusive: []
                    shared: []
                }
            }

            mod side_effects {
                $crate::__suite_tests! { side_effects, $persistent, $exclusive, $shared;
                    always: [
                        write_and_read_outputs,
                        same_outputs_accepted_again,
                        conflicting_outputs_rejected_and_nothing_written,
                        empty_outputs_round_trip,
                        oversized_outputs_rejected,
                        small_cache_never_serves_what_store_lacks,
                        cache_size_zero_works,
                        inter_call_output_states_distinguished,
                        inter_call_output_conflict,
                        inter_call_output_too_large_rejected,
                        inbound_malformed_rejected_nothing_written,
                        inbound_payload_too_large_rejected,
                        inbound_same_record_again_accepted,
                        inbound_conflict_with_stored_rejected,
                        inbound_conflict_within_call_rejected,
                        read_inbound_order_and_filters,
                        concurrent_readers_while_writing,
                        usable_as_dyn,
                    ]
                    persistent: []
                    directory: []
                    exclusive: []
                    shared: []
                }
            }

            mod ledger {
                $crate::__suite_tests! { ledger, $persistent, $exclusive, $shared;
                    always: [
                        invalid_book_names_rejected,
                        unusual_book_names_round_trip,
                        reserved_book_rejected,
                        register_asset_idempotent,
                        register_asset_validates_fields,
                        open_account_requires_registered_asset,
                        open_account_idempotent,
                        commit_rejects_oversized_fields,
                        commit_rejects_empty_transaction,
                        commit_rejects_zero_amount,
                        commit_rejects_account_outside_book,
                        commit_rejects_unknown_account,
                        commit_rejects_asset_mismatch,
                        commit_rejects_unbalanced,
                        commit_balances_per_asset,
                        commit_rejects_below_min_balance,
                        commit_rejects_overflow,
                        lifetime_sums_never_overflow,
                        floor_and_overflow_ignore_posting_order,
                        floor_checks_the_balance_after_all_postings,
                        overflow_checks_the_balance_after_all_postings,
                        commit_batch_checks_balances_after_each_draft,
                        commit_rejects_duplicate_transaction_id,
                        commit_check_order,
                        idempotency_key_returns_first_commit,
                        idempotency_key_scoped_per_book,
                        sequences_per_book_gapless,
                        at_non_decreasing_when_clock_goes_back,
                        events_record_every_write,
                        commit_batch_results_are_positional,
                        commit_batch_later_drafts_see_earlier_ones,
                        commit_batch_of_many_drafts_reads_back_whole,
                        concurrent_commits_gapless,
                        concurrent_idempotent_retries_commit_once,
                        balance_as_of_and_updated_seq,
                        balance_uses_configured_normal_side,
                        reads_never_create,
                        asset_and_transaction_lookup,
                        account_history_pages_by_transaction,
                        trial_balance_sorted_and_balanced,
                        read_events_after_exclusive_with_limit,
                        usable_as_dyn,
                    ]
                    persistent: []
                    directory: []
                    exclusive: []
                    shared: []
                }
            }

            mod segments {
                $crate::__suite_tests! { segments, $persistent, $exclusive, $shared;
                    always: [
                        append_returns_indexes_and_read_all_in_order,
                        entries_are_opaque_bytes,
                        oversized_entry_rejected,
                        unknown_segment_not_found,
                        exists_and_lookup_session_of,
                        create_segment_replaces_whole,
                        truncate_keeps_prefix,
                        truncate_beyond_end_rejected,
                        listings_newest_first,
                        wrong_session_rejected,
                        traces_kept_apart,
                        trace_only_segment_does_not_exist,
                        concurrent_appends_never_lose_or_interleave,
                        typed_helpers,
                        usable_as_dyn,
                    ]
                    persistent: []
                    directory: []
                    exclusive: []
                    shared: []
                }
            }

            mod shared {
                $crate::__suite_tests! { shared, $persistent, $exclusive, $shared;
                    always: []
                    persistent: []
                    directory: []
                    exclusive: []
                    shared: [
                        engine_sequences_contiguous_across_instances,
                        ledger_seqs_gapless_across_instances,
                        idempotency_key_commits_once_across_instances,
                        min_balance_holds_across_instances,
                        partition_owned_by_one_instance,
                        concurrent_segment_appends_across_instances,
                        wait_for_sequence_woken_by_another_instance,
                        engine_sequences_contiguous_across_processes,
                        ledger_seqs_gapless_across_processes,
                        idempotency_key_commits_once_across_processes,
                        min_balance_holds_across_processes,
                        partition_owner_dies_across_processes,
                        concurrent_segment_appends_across_processes,
                        wait_for_sequence_woken_by_another_process,
                    ]
                }
            }

            mod listings {
                $crate::__suite_tests! { listings, $persistent, $exclusive, $shared;
                    always: [
                        every_listing_empty_on_a_fresh_backend,
                        partitions_listed_in_byte_order_and_paged,
                        partitions_listed_only_while_flushed_data,
                        partitions_listing_rejects_invalid_cursor,
                        books_listed_in_byte_order_and_paged,
                        assets_listed_in_byte_order_and_paged,
                        accounts_listed_per_book_in_byte_order_and_paged,
                        output_keys_listed_in_key_order_and_paged,
                        inter_call_output_keys_listed_in_key_order_and_paged,
                        inbound_callees_listed_once_in_id_order_and_paged,
                        sessions_paged_ascending,
                        segments_paged_ascending,
                    ]
                    persistent: [
                        every_listing_survives_reopen,
                    ]
                    directory: []
                    exclusive: []
                    shared: []
                }
            }

            mod backend {
                $crate::__suite_tests! { backend, $persistent, $exclusive, $shared;
                    always: [
                        durability_is_reported,
                        store_handles_share_data,
                        stores_never_see_each_other,
                        close_makes_every_handle_answer_closed,
                        close_ends_a_wait_in_progress,
                    ]
                    persistent: [
                        every_error_names_the_store_location,
                        close_makes_relaxed_writes_durable_and_releases_the_store,
                        missing_store_without_create_is_not_found,
                        reopen_keeps_engine,
                        reopen_keeps_flushed_state,
                        reopen_keeps_ledger,
                        reopen_keeps_segments,
                        reopen_keeps_side_effects,
                        reopen_keeps_every_store,
                        relaxed_writes_survive_clean_close,
                    ]
                    directory: [
                        file_instead_of_directory_rejected,
                        foreign_directory_rejected,
                        damaged_files_error_without_panic,
                    ]
                    exclusive: [
                        second_open_is_locked,
                    ]
                    shared: []
                }

                $crate::__suite_gated_test!(
                    $read_only,
                    "needs read-only opens (Capabilities::read_only_open)",
                    backend,
                    read_only_reads_everything_and_refuses_every_write
                );
                $crate::__suite_gated_test!(
                    $read_only,
                    "needs read-only opens (Capabilities::read_only_open)",
                    backend,
                    read_only_opens_coexist_where_declared
                );

                #[test]
                fn capabilities_match_suite_flags() {
                    $crate::backend::capabilities_match_suite_flags::<super::SuiteBackend>(
                        $persistent,
                        $exclusive,
                        $shared,
                    );
                    $crate::backend::read_only_flag_matches::<super::SuiteBackend>($read_only);
                }
            }
        }
    };
}

/// Expands one store's lists of rules into tests (used by [`suite!`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __suite_tests {
    (
        $store:ident, $persistent:tt, $exclusive:tt, $shared:tt;
        always: [$($always:ident),* $(,)?]
        persistent: [$($needs_reopen:ident),* $(,)?]
        directory: [$($needs_dir:ident),* $(,)?]
        exclusive: [$($needs_lock:ident),* $(,)?]
        shared: [$($needs_sharing:ident),* $(,)?]
    ) => {
        $(
            #[test]
            fn $always() {
                $crate::$store::$always::<super::SuiteBackend>();
            }
        )*
        $(
            $crate::__suite_gated_test!(
                $persistent,
                "needs a persistent backend (Capabilities::persistent)",
                $store,
                $needs_reopen
            );
        )*
        $(
            $crate::__suite_directory_test!($persistent, $shared, $store, $needs_dir);
        )*
        $(
            $crate::__suite_gated_test!(
                $exclusive,
                "needs an exclusive directory lock (Capabilities::exclusive_open)",
                $store,
                $needs_lock
            );
        )*
        $(
            $crate::__suite_gated_test!(
                $shared,
                "needs a shared backend (Capabilities::shared)",
                $store,
                $needs_sharing
            );
        )*
    };
}

/// One test that runs only when its capability flag is `true`, and is ignored otherwise
/// (used by [`suite!`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __suite_gated_test {
    (true, $why:literal, $store:ident, $test:ident) => {
        #[test]
        fn $test() {
            $crate::$store::$test::<super::SuiteBackend>();
        }
    };
    (false, $why:literal, $store:ident, $test:ident) => {
        #[test]
        #[ignore = $why]
        fn $test() {
            $crate::$store::$test::<super::SuiteBackend>();
        }
    };
}

/// One test that needs a backend kept in a directory (persistent and not shared), and is
/// ignored otherwise (used by [`suite!`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __suite_directory_test {
    (true, false, $store:ident, $test:ident) => {
        $crate::__suite_gated_test!(true, "", $store, $test);
    };
    ($persistent:tt, $shared:tt, $store:ident, $test:ident) => {
        $crate::__suite_gated_test!(
            false,
            "needs a backend kept in a directory (Capabilities::persistent, not shared)",
            $store,
            $test
        );
    };
}

#[cfg(test)]
mod suite_list {
    //! The macro's lists and the test bodies must name the same functions: a body missing
    //! from the list would silently never run.

    use std::collections::BTreeSet;

    const LIB: &str = include_str!("lib.rs");

    /// The rules listed for `store` in the macro.
    fn listed(store: &str) -> BTreeSet<String> {
        let start = LIB
            .find(&format!("__suite_tests! {{ {store},"))
            .unwrap_or_else(|| panic!("no list for {store}"));
        let rest = &LIB[start..];
        let end = rest.find("shared: [").unwrap();
        let close = rest[end..].find(']').unwrap();
        rest[..end + close]
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .filter(|w| {
                ![
                    "always",
                    "persistent",
                    "directory",
                    "exclusive",
                    "shared",
                    "__suite_tests",
                    store,
                ]
                .contains(w)
            })
            .filter(|w| !w.starts_with('$'))
            .map(str::to_owned)
            .chain(gated(store))
            .collect()
    }

    /// The tests of `store` generated one by one with `__suite_gated_test!` (outside the
    /// lists): the last word of each such call naming the store.
    fn gated(store: &str) -> Vec<String> {
        LIB.match_indices("__suite_gated_test!(")
            .filter_map(|(at, _)| {
                let call = &LIB[at..];
                let call = &call[..call.find(");")?];
                // A call inside a macro definition names its test by a parameter.
                if call.rsplit(',').next()?.trim().starts_with('$') {
                    return None;
                }
                let words: Vec<&str> = call
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .filter(|w| !w.is_empty())
                    .collect();
                words
                    .contains(&store)
                    .then(|| words.last().map(|w| (*w).to_owned()))
                    .flatten()
            })
            .collect()
    }

    /// The test bodies defined in a module's source.
    fn bodies(source: &str) -> BTreeSet<String> {
        source
            .lines()
            .filter_map(|line| line.strip_prefix("pub fn "))
            .filter_map(|rest| rest.strip_suffix("<B: Backend>() {"))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn every_body_is_listed_once() {
        let stores = [
            ("engine", include_str!("engine.rs")),
            ("state", include_str!("state.rs")),
            ("side_effects", include_str!("side_effects.rs")),
            ("ledger", include_str!("ledger.rs")),
            ("segments", include_str!("segments.rs")),
            ("listings", include_str!("listings.rs")),
            ("backend", include_str!("backend.rs")),
            ("shared", include_str!("shared.rs")),
        ];
        for (store, source) in stores {
            let defined = bodies(source);
            assert!(!defined.is_empty(), "{store}: no test body found");
            assert_eq!(
                listed(store),
                defined,
                "{store}: macro list and bodies differ"
            );
        }
        assert!(LIB.contains("$crate::backend::capabilities_match_suite_flags::<"));
    }
}
