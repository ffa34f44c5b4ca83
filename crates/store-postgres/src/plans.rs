//! The listings' query plans (§9.1): on tables of thousands of rows, every listing statement
//! reads through an index in its listing order and stops at its limit (no sequential scan,
//! no sort of the whole result, no plan node producing more than a few times the limit),
//! whether it starts at the first item or after a cursor. The plans are those of
//! `EXPLAIN ANALYZE`: what the server did, not what it estimated.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use postgres::types::ToSql;
use postgres::{Client, NoTls};
use store_api::{Backend, OpenOptions};

use crate::{PostgresBackend, ledger, scratch, segment, side_effect, state};

/// Rows enough that a sequential scan would cost more than an index scan stopped at the
/// limit: partitions (half of them holding a key), books, assets, accounts in 20 books,
/// output slots of 100 lyquids, inter-call outputs, inbound calls of 50 callees, segments
/// of 50 sessions (one in ten holding only traces).
const POPULATE: &str = "
INSERT INTO state_partitions (name) SELECT 'p' || g FROM generate_series(1, 5000) AS g;
INSERT INTO state_entries (partition_id, key, value)
    SELECT id, '\\x01'::bytea, ''::bytea FROM state_partitions WHERE id % 2 = 0;
INSERT INTO ledger_assets (id, precision, name)
    SELECT 'A' || g, 2, 'asset' FROM generate_series(1, 5000) AS g;
INSERT INTO ledger_book_heads (book, seq, last_at)
    SELECT 'b' || g, 1, 0 FROM generate_series(1, 5000) AS g;
INSERT INTO ledger_accounts
    (book, path, asset, kind, normal_side, min_balance, balance, updated_seq)
    SELECT 'b' || (g % 20), 'assets:' || g, 'A1', 'asset', 'debit', NULL, 0, 0
    FROM generate_series(1, 5000) AS g;
INSERT INTO side_effect_outputs (lyquid, pos, kind, payloads)
    SELECT decode(lpad(to_hex(g % 100), 40, '0'), 'hex'),
           decode(lpad(to_hex(g), 32, '0'), 'hex'), k, '{}'
    FROM generate_series(1, 3000) AS g, unnest(ARRAY['event', 'call', 'timer']) AS k;
INSERT INTO side_effect_call_outputs (callee, pos, inter_call_seq, output)
    SELECT decode(lpad(to_hex(g % 100), 40, '0'), 'hex'),
           decode(lpad(to_hex(g), 32, '0'), 'hex'), g % 7, NULL
    FROM generate_series(1, 5000) AS g;
INSERT INTO side_effect_inbound (callee, order_pos, order_seq, caller, call_pos, payload)
    SELECT decode(lpad(to_hex(g % 50), 40, '0'), 'hex'),
           decode(lpad(to_hex(g), 32, '0'), 'hex'), 0,
           decode(lpad('1', 40, '0'), 'hex'), decode(lpad('0', 32, '0'), 'hex'), ''::bytea
    FROM generate_series(1, 5000) AS g;
INSERT INTO segments (segment, session, entries, traces, live)
    SELECT md5('segment ' || g)::uuid, md5('session ' || (g % 50))::uuid, 1, 0, g % 10 <> 0
    FROM generate_series(1, 5000) AS g;
INSERT INTO ledger_transactions (txid, book, seq, at, idempotency_key, posting_count)
    SELECT md5('tx ' || g)::uuid, 'b' || (g % 20), g, 0, 'key' || g, 1
    FROM generate_series(1, 5000) AS g;
INSERT INTO ledger_totals (book, asset, debits, credits)
    SELECT 'b' || g, 'A1', 0, 0 FROM generate_series(1, 5000) AS g;
ANALYZE;
";

/// The plan of `sql` run with `params`, one line per row of `EXPLAIN ANALYZE`.
fn plan(client: &mut Client, sql: &str, params: &[&(dyn ToSql + Sync)]) -> String {
    client
        .query(
            &format!("EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF) {sql}"),
            params,
        )
        .unwrap_or_else(|e| panic!("EXPLAIN {sql}: {e}"))
        .iter()
        .map(|row| row.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `plan` sorts rows it read (a `Sort` node; an `Incremental Sort` orders only
/// the rows of one index key prefix at a time, as they stream by).
fn sorts_everything(plan: &str) -> bool {
    plan.lines().any(|line| {
        let node = line.trim_start().trim_start_matches("->").trim_start();
        node.starts_with("Sort  (")
    })
}

/// The most rows any node of `plan` produced, or read and dropped (by a filter or an index
/// recheck), in one loop.
fn most_rows(plan: &str) -> u64 {
    [
        "actual rows=",
        "Rows Removed by Filter: ",
        "Rows Removed by Index Recheck: ",
    ]
    .iter()
    .flat_map(|label| plan.split(label).skip(1))
    .map(|rest| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u64>().unwrap()
    })
    .max()
    .unwrap_or(0)
}

/// A client on a fresh store's schema, filled with [`POPULATE`]'s rows.
fn populated_store() -> Client {
    let location = scratch::fresh_location().unwrap();
    drop(PostgresBackend::open(&location, OpenOptions::default()).unwrap());
    let mut client = location.config().connect(NoTls).unwrap();
    client
        .batch_execute(&format!("SET search_path TO {}", location.quoted_schema()))
        .unwrap();
    client.batch_execute(POPULATE).unwrap();
    client
}

#[test]
fn every_listing_reads_an_index_in_order_and_stops_at_its_limit() {
    let mut client = populated_store();

    let limit = 10i64;
    let (empty, zero): (Vec<u8>, i64) = (Vec::new(), 0);
    let lyquid = vec![0u8; 20];
    let pos = vec![0u8; 16];
    let (session, segment): (uuid::Uuid, uuid::Uuid) = client
        .query_one(
            "SELECT session, segment FROM segments WHERE live \
             ORDER BY session, segment LIMIT 1",
            &[],
        )
        .map(|row| (row.get(0), row.get(1)))
        .unwrap();
    let cases: [(&str, &str, Vec<&(dyn ToSql + Sync)>); 16] = [
        ("partitions", state::LIST, vec![&"", &limit]),
        ("partitions after", state::LIST, vec![&"p2500", &limit]),
        ("books", ledger::LIST_BOOKS, vec![&"", &limit]),
        ("books after", ledger::LIST_BOOKS, vec![&"b2500", &limit]),
        ("assets", ledger::LIST_ASSETS, vec![&"A2500", &limit]),
        ("accounts", ledger::LIST_ACCOUNTS, vec![&"b7", &"", &limit]),
        (
            "accounts after",
            ledger::LIST_ACCOUNTS,
            vec![&"b7", &"assets:3", &limit],
        ),
        (
            "output keys",
            side_effect::LIST_OUTPUT_KEYS,
            vec![&empty, &empty, &-1i32, &limit],
        ),
        (
            "output keys after",
            side_effect::LIST_OUTPUT_KEYS,
            vec![&lyquid, &pos, &1i32, &limit],
        ),
        (
            "call output keys",
            side_effect::LIST_CALL_OUTPUT_KEYS,
            vec![&empty, &empty, &-1i64, &limit],
        ),
        (
            "call output keys after",
            side_effect::LIST_CALL_OUTPUT_KEYS,
            vec![&lyquid, &pos, &zero, &limit],
        ),
        ("callees", side_effect::LIST_CALLEES, vec![&lyquid, &limit]),
        ("sessions", segment::SESSIONS_FROM_FIRST, vec![&limit]),
        (
            "sessions after",
            segment::SESSIONS_AFTER,
            vec![&session, &limit],
        ),
        (
            "segments",
            segment::SESSION_SEGMENTS_FROM_FIRST,
            vec![&session, &limit],
        ),
        (
            "segments after",
            segment::SESSION_SEGMENTS_AFTER,
            vec![&session, &segment, &limit],
        ),
    ];
    for (name, sql, params) in &cases {
        let plan = plan(&mut client, sql, params);
        assert!(
            !plan.contains("Seq Scan"),
            "{name} scans a whole table:\n{plan}"
        );
        assert!(plan.contains("Index"), "{name} uses no index:\n{plan}");
        assert!(
            !sorts_everything(&plan),
            "{name} sorts what it read:\n{plan}"
        );
        assert!(
            plan.contains("Limit") && most_rows(&plan) <= 3 * limit as u64,
            "{name} does not stop at its limit:\n{plan}"
        );
    }
}

/// The ledger's prefetch (one statement reading every record a commit batch plans
/// against) probes an index per key and scans no table, whether the server plans it for
/// the given arrays or once for any (a pooled connection's prepared statement goes
/// generic after a few runs).
#[test]
fn the_ledger_prefetch_probes_indexes_only() {
    let mut client = populated_store();
    let books = vec!["b7", "b8"];
    let (key_books, keys) = (vec!["b7"], vec!["key27"]);
    let (account_books, paths) = (vec!["b7", "b7"], vec!["assets:7", "assets:27"]);
    let (total_books, assets) = (vec!["b7"], vec!["A1"]);
    let txids = vec![uuid::Uuid::from_u128(1)];
    let params: [&(dyn ToSql + Sync); 8] = [
        &books,
        &key_books,
        &keys,
        &account_books,
        &paths,
        &total_books,
        &assets,
        &txids,
    ];
    for mode in ["force_custom_plan", "force_generic_plan"] {
        client
            .batch_execute(&format!("SET plan_cache_mode TO {mode}"))
            .unwrap();
        let plan = plan(&mut client, ledger::PREFETCH, &params);
        assert!(!plan.contains("Seq Scan"), "{mode}: a table scan:\n{plan}");
        for index in [
            "ledger_book_heads_pkey",
            "ledger_transactions_idempotency",
            "ledger_accounts_pkey",
            "ledger_totals_pkey",
            "ledger_transactions_pkey",
        ] {
            assert!(plan.contains(index), "{mode}: {index} unused:\n{plan}");
        }
        let rows = client.query(ledger::PREFETCH, &params).unwrap();
        let kinds: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
        let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
        assert_eq!(
            (count("h"), count("i"), count("a"), count("t"), count("x")),
            (2, 1, 2, 1, 1),
            "{mode}: {kinds:?}"
        );
    }
}
