//! Listing rules: `docs/contract.md` §9.1 (every store enumerates what it holds without being told
//! names first, paginated, in one stated order).
//!
//! Every listing pages the same way: items ascending by the listed type's `Ord` (the byte
//! order of the stored key encoding), strictly after an exclusive cursor that need not be
//! stored, at most `limit` per page, 0 giving nothing. [`check_pages`] checks all of that
//! against the whole expected listing, which each test computes with Rust's own sort, so
//! every backend must order multi-byte UTF-8 names and `0xFF` bytes exactly alike.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::Arc;

use bytes::Bytes;
use store_api::{
    AccountCfg, AccountDef, AccountKind, AccountPath, AssetDef, AssetId, Backend, Book, ChainPos,
    Direction, EventOutputs, InputError, InterCallOutputKey, LedgerStore, LyquidId, SegmentId,
    SegmentLogStore, SessionId, SideEffectKey, SideEffectKind, SideEffectStore, StateError,
    StateSnapshot, StateStore, Transaction,
};

use crate::harness::{Instance, invalid_names};
use crate::ledger::{account, account_def, asset_id, book};
use crate::side_effects::{inbound, outputs};

/// Checks one listing against `expected`, the whole listing in the contract's order:
/// limit 0 gives nothing; one unbounded page is everything; a page of exactly
/// `expected.len()` items is everything and the page after it is empty; pages of 1, 2 and
/// 3 items, each started after the previous page's last item, concatenate to everything;
/// and the cursor is exclusive (after item `i` come exactly the items after it).
pub fn check_pages<T, C>(
    what: &str,
    expected: &[T],
    list: impl Fn(Option<&C>, usize) -> Vec<T>,
    cursor: impl Fn(&T) -> C,
) where
    T: Clone + PartialEq + Debug,
{
    assert_eq!(list(None, 0), Vec::<T>::new(), "{what}: limit 0");
    assert_eq!(
        list(None, usize::MAX),
        expected,
        "{what}: one unbounded page"
    );
    if let Some(first) = expected.first() {
        assert_eq!(
            list(Some(&cursor(first)), 0),
            Vec::<T>::new(),
            "{what}: limit 0 after a cursor"
        );
    }
    let exact = list(None, expected.len());
    assert_eq!(exact, expected, "{what}: a page of exactly every item");
    if let Some(last) = exact.last() {
        assert_eq!(
            list(Some(&cursor(last)), expected.len()),
            Vec::<T>::new(),
            "{what}: the page after the last item"
        );
    }
    for size in 1..=3 {
        let mut all: Vec<T> = Vec::new();
        let mut after: Option<C> = None;
        loop {
            let page = list(after.as_ref(), size);
            assert!(page.len() <= size, "{what}: a page of {size} holds more");
            let Some(last) = page.last() else {
                break;
            };
            after = Some(cursor(last));
            let short = page.len() < size;
            all.extend(page);
            assert!(
                all.len() <= expected.len(),
                "{what}: pages of {size} repeat items"
            );
            if short {
                break;
            }
        }
        assert_eq!(all, expected, "{what}: pages of {size} concatenated");
    }
    for (i, item) in expected.iter().enumerate() {
        assert_eq!(
            list(Some(&cursor(item)), usize::MAX),
            &expected[i + 1..],
            "{what}: the items after item {i} ({item:?})"
        );
    }
}

/// Partition names that sort differently by bytes than a careless engine might: shared
/// prefixes, ASCII before and after `_`, multi-byte UTF-8 of 2, 3 and 4 bytes, SQL quotes,
/// and the longest name.
fn partition_names() -> Vec<String> {
    vec![
        "a".into(),
        "ab".into(),
        "a b".into(),
        "a.b".into(),
        "Z".into(),
        "_under".into(),
        "~tilde".into(),
        "é".into(),
        "élan-中文-🦀".into(),
        "中".into(),
        "🦀".into(),
        "\u{FFFD}".into(),
        "x'; DROP TABLE t; --".into(),
        "n".repeat(store_api::MAX_NAME_LEN),
    ]
}

/// `names` sorted as the listings must give them: by `str`'s `Ord`, the byte order of UTF-8.
fn sorted(names: impl IntoIterator<Item = String>) -> Vec<String> {
    names
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The whole listing of the partitions holding data.
fn partitions<B: Backend>(backend: &B) -> Vec<String> {
    backend.list_partitions(None, usize::MAX).unwrap()
}

/// Flushes one key (holding the name) into each partition of `names`.
fn fill_partitions<B: Backend>(backend: &B, names: &[String]) {
    for name in names {
        let mut state = backend.state_store(name).unwrap();
        state.put(b"k", name.as_bytes()).unwrap();
        state.flush().unwrap();
    }
}

/// Ledger books with shared prefixes and multi-byte names, each given `paths` accounts.
fn ledger_books() -> Vec<&'static str> {
    vec!["a", "ab", "a b", "Z", "é", "中文", "🦀", "~"]
}

/// Account paths with shared prefixes and multi-byte names.
fn account_paths() -> Vec<&'static str> {
    vec!["cash", "cash2", "cash:eur", "Cash", "é", "中", "🦀", "~"]
}

/// Assets with ids of every kind of byte order trap, each with its own precision and name.
fn asset_defs() -> Vec<AssetDef> {
    [
        "USD",
        "EUR",
        "Z9",
        "a",
        "ab",
        "é€",
        "中文",
        "🦀",
        "~",
        "X".repeat(32).as_str(),
    ]
    .iter()
    .enumerate()
    .map(|(i, id)| AssetDef {
        id: asset_id(id),
        precision: (i % 19) as u8,
        name: format!("asset {i}: {id}"),
    })
    .collect()
}

/// An account configuration that differs from its kind's default (another normal side,
/// a floor), so a listing that loses the configuration is caught.
fn unusual_cfg(i: usize) -> AccountCfg {
    match i % 3 {
        0 => AccountCfg::for_kind(AccountKind::Asset),
        1 => AccountCfg {
            normal_side: Direction::Credit,
            min_balance: Some(-(i as i64)),
        },
        _ => AccountCfg::for_kind(AccountKind::Liability).with_min_balance(i as i64),
    }
}

/// Opens every path of [`account_paths`] in every book of [`ledger_books`] and returns the
/// definitions and configurations opened, per book.
fn fill_ledger<L: LedgerStore + ?Sized>(
    ledger: &L,
) -> BTreeMap<Book, Vec<(AccountDef, AccountCfg)>> {
    for def in asset_defs() {
        ledger.register_asset(&def).unwrap();
    }
    let usd = asset_id("USD");
    let mut opened: BTreeMap<Book, Vec<(AccountDef, AccountCfg)>> = BTreeMap::new();
    for (b, name) in ledger_books().into_iter().enumerate() {
        for (p, path) in account_paths().into_iter().enumerate() {
            let kinds = [
                AccountKind::Asset,
                AccountKind::Income,
                AccountKind::Clearing,
            ];
            let def = account_def(&account(name, path), &usd, kinds[(b + p) % 3]);
            let cfg = unusual_cfg(b + p);
            ledger.open_account(&def, &cfg).unwrap();
            opened.entry(book(name)).or_default().push((def, cfg));
        }
    }
    for accounts in opened.values_mut() {
        accounts.sort_by(|a, b| a.0.id.path.cmp(&b.0.id.path));
    }
    opened
}

/// Lyquid ids whose bytes trap signed or little-endian comparisons.
fn lyquids() -> Vec<LyquidId> {
    let mut mixed = [0u8; 20];
    mixed[0] = 1;
    mixed[19] = 0xFF;
    let mut high_low = [0xFFu8; 20];
    high_low[19] = 0;
    // The id right after `[0x7F; 20]`: a skip scan must not step over it.
    let mut next_to_7f = [0x7Fu8; 20];
    next_to_7f[19] = 0x80;
    vec![
        LyquidId([0; 20]),
        LyquidId(mixed),
        LyquidId([0x7F; 20]),
        LyquidId(next_to_7f),
        LyquidId([0x80; 20]),
        LyquidId(high_low),
        LyquidId([0xFF; 20]),
    ]
}

/// Chain positions whose bytes trap signed or little-endian comparisons.
fn positions() -> Vec<ChainPos> {
    vec![
        ChainPos(0),
        ChainPos::new(0, u32::MAX),
        ChainPos::new(1, 0),
        ChainPos::new(u64::from(u32::MAX) + 1, 7),
        ChainPos(1 << 127),
        ChainPos(u128::MAX),
    ]
}

/// Every output slot of [`lyquids`] × [`positions`] × every kind.
fn output_keys() -> Vec<SideEffectKey> {
    let mut keys = Vec::new();
    for lyquid in lyquids() {
        for pos in positions() {
            for kind in [
                SideEffectKind::Timer,
                SideEffectKind::Call,
                SideEffectKind::Event,
            ] {
                keys.push(SideEffectKey { lyquid, pos, kind });
            }
        }
    }
    keys
}

/// Inter-call output slots of [`lyquids`] × some [`positions`] × sequence numbers whose
/// bytes trap signed or little-endian comparisons.
fn call_output_keys() -> Vec<InterCallOutputKey> {
    let mut keys = Vec::new();
    for callee in lyquids() {
        for pos in [ChainPos(0), ChainPos(1 << 127), ChainPos(u128::MAX)] {
            for inter_call_seq in [0, 1, 255, 256, 1 << 31, u32::MAX] {
                keys.push(InterCallOutputKey {
                    callee,
                    pos,
                    inter_call_seq,
                });
            }
        }
    }
    keys
}

/// Writes an output slot (empty for every third) for each of [`output_keys`].
fn fill_outputs<S: SideEffectStore + ?Sized>(store: &S) -> Vec<SideEffectKey> {
    let keys = output_keys();
    let slots: BTreeMap<SideEffectKey, EventOutputs> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let slot = if i % 3 == 0 {
                EventOutputs::default()
            } else {
                outputs(&[b"out", &[i as u8]])
            };
            (*key, slot)
        })
        .collect();
    store.write_outputs(&slots).unwrap();
    slots.into_keys().collect()
}

/// Stores an inter-call output (with no payload, an empty one, or bytes) for each of
/// [`call_output_keys`].
fn fill_call_outputs<S: SideEffectStore + ?Sized>(store: &S) -> Vec<InterCallOutputKey> {
    let mut keys = call_output_keys();
    for (i, key) in keys.iter().enumerate() {
        let output = match i % 3 {
            0 => None,
            1 => Some(Bytes::new()),
            _ => Some(Bytes::from(vec![i as u8; 3])),
        };
        store.upsert_inter_call_output(key, &output).unwrap();
    }
    keys.sort();
    keys
}

/// Appends inbound calls for every callee of [`lyquids`], several for most, and returns
/// the callees.
fn fill_inbound<S: SideEffectStore + ?Sized>(store: &S) -> Vec<LyquidId> {
    let mut records = Vec::new();
    for (i, callee) in lyquids().into_iter().enumerate() {
        for seq in 0..=(i as u32 % 3) {
            let mut record = inbound(0, 5 + u64::from(seq), seq, 1, b"call");
            record.callee = callee;
            records.push(record);
        }
    }
    store.append_inbound_inter_calls(&records).unwrap();
    let mut callees = lyquids();
    callees.sort();
    callees
}

/// Session ids whose bytes trap signed or little-endian comparisons.
fn session_ids() -> Vec<SessionId> {
    let mut high = [0u8; 16];
    high[0] = 0x80;
    vec![
        SessionId::from_u128(1),
        // Right after the one before: a skip scan must not step over it.
        SessionId::from_u128(2),
        SessionId::from_u128(0x7F << 120),
        SessionId::from_bytes(high),
        SessionId::from_u128(u128::MAX - 1),
        SessionId::from_bytes([0xFF; 16]),
    ]
}

/// Segment `n` of the session numbered `s`, with ids whose bytes trap careless engines.
fn segment_id(s: usize, n: u8) -> SegmentId {
    let mut bytes = [n; 16];
    bytes[0] = [0x00, 0x7F, 0x80, 0xFF][usize::from(n) % 4];
    bytes[15] = s as u8;
    SegmentId::from_bytes(bytes)
}

/// Gives every session of [`session_ids`] live segments (appended to, or created empty)
/// and one segment holding only trace entries, plus a session that holds only such a
/// segment. Returns the live segments per session, ascending.
fn fill_segments<L: SegmentLogStore + ?Sized>(log: &L) -> BTreeMap<SessionId, Vec<SegmentId>> {
    let mut live: BTreeMap<SessionId, Vec<SegmentId>> = BTreeMap::new();
    for (s, session) in session_ids().into_iter().enumerate() {
        for n in 0..=(s as u8 % 4) {
            let segment = segment_id(s, n);
            if n % 2 == 0 {
                log.append(session, segment, b"entry").unwrap();
            } else {
                log.create_segment(session, segment, &[]).unwrap();
            }
            live.entry(session).or_default().push(segment);
        }
        log.append_trace(session, segment_id(s, 200), b"trace only")
            .unwrap();
    }
    log.append_trace(SessionId::from_u128(0x55), segment_id(9, 9), b"trace only")
        .unwrap();
    for segments in live.values_mut() {
        segments.sort();
    }
    live
}

/// Every listing of `backend`, whole, as one comparable value.
fn every_listing<B: Backend>(backend: &B) -> String {
    let ledger = backend.ledger();
    let side_effects = backend.side_effects();
    let log = backend.segment_log();
    let books = ledger.list_books(None, usize::MAX).unwrap();
    let accounts: Vec<_> = books
        .iter()
        .map(|b| ledger.list_accounts(b, None, usize::MAX).unwrap())
        .collect();
    let sessions = log.list_sessions_page(None, usize::MAX).unwrap();
    let segments: Vec<_> = sessions
        .iter()
        .map(|s| log.list_segments_page(*s, None, usize::MAX).unwrap())
        .collect();
    format!(
        "partitions {:?}\nbooks {books:?}\naccounts {accounts:?}\nassets {:?}\n\
         outputs {:?}\ncall outputs {:?}\ncallees {:?}\nsessions {sessions:?}\n\
         segments {segments:?}",
        partitions(backend),
        ledger.list_assets(None, usize::MAX).unwrap(),
        side_effects.list_output_keys(None, usize::MAX).unwrap(),
        side_effects
            .list_inter_call_output_keys(None, usize::MAX)
            .unwrap(),
        side_effects.list_inbound_callees(None, usize::MAX).unwrap(),
    )
}

// ---------------------------------------------------------------------------------------
// Every store
// ---------------------------------------------------------------------------------------

/// §9.1: on a fresh backend every listing is empty, from the start and after any cursor.
pub fn every_listing_empty_on_a_fresh_backend<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let backend = &inst.backend;
    let ledger = backend.ledger();
    let side_effects = backend.side_effects();
    let log = backend.segment_log();
    for limit in [1, usize::MAX] {
        assert_eq!(
            backend.list_partitions(None, limit).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            backend.list_partitions(Some("a"), limit).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(ledger.list_books(None, limit).unwrap(), vec![]);
        assert_eq!(ledger.list_books(Some(&book("a")), limit).unwrap(), vec![]);
        assert_eq!(ledger.list_assets(None, limit).unwrap(), vec![]);
        assert_eq!(
            ledger.list_accounts(&book("a"), None, limit).unwrap(),
            vec![]
        );
        assert_eq!(side_effects.list_output_keys(None, limit).unwrap(), vec![]);
        assert_eq!(
            side_effects
                .list_inter_call_output_keys(None, limit)
                .unwrap(),
            vec![]
        );
        assert_eq!(
            side_effects.list_inbound_callees(None, limit).unwrap(),
            vec![]
        );
        assert_eq!(
            side_effects
                .list_inbound_callees(Some(&LyquidId([0; 20])), limit)
                .unwrap(),
            vec![]
        );
        assert_eq!(log.list_sessions_page(None, limit).unwrap(), vec![]);
        assert_eq!(
            log.list_segments_page(SessionId::from_u128(1), None, limit)
                .unwrap(),
            vec![]
        );
    }
}

/// §9.1 (persistent): every listing is the same after the backend is closed and opened
/// again, and unflushed state is not listed after the reopen either.
pub fn every_listing_survives_reopen<B: Backend>() {
    let inst = Instance::<B>::relaxed();
    fill_partitions(&inst.backend, &partition_names());
    fill_ledger(&*inst.backend.ledger());
    fill_outputs(&*inst.backend.side_effects());
    fill_call_outputs(&*inst.backend.side_effects());
    fill_inbound(&*inst.backend.side_effects());
    fill_segments(&*inst.backend.segment_log());
    {
        let mut unflushed = inst.backend.state_store("unflushed").unwrap();
        unflushed.put(b"k", b"v").unwrap();
        assert!(!partitions(&inst.backend).contains(&"unflushed".to_owned()));
    }
    let before = every_listing(&inst.backend);
    let inst = inst.reopen();
    assert_eq!(every_listing(&inst.backend), before);
    assert_eq!(partitions(&inst.backend), sorted(partition_names()));
}

// ---------------------------------------------------------------------------------------
// State partitions
// ---------------------------------------------------------------------------------------

/// §9.1: `list_partitions` pages the names of the partitions holding data by byte order
/// of their UTF-8, whatever the names hold; the cursor need not be a partition.
pub fn partitions_listed_in_byte_order_and_paged<B: Backend>() {
    let inst = Instance::<B>::relaxed();
    let names = partition_names();
    fill_partitions(&inst.backend, &names);
    let expected = sorted(names);
    check_pages(
        "list_partitions",
        &expected,
        |after: Option<&String>, limit| {
            inst.backend
                .list_partitions(after.map(String::as_str), limit)
                .unwrap()
        },
        String::clone,
    );
    let after_b: Vec<String> = expected
        .iter()
        .filter(|n| n.as_str() > "b")
        .cloned()
        .collect();
    assert_eq!(
        inst.backend.list_partitions(Some("b"), usize::MAX).unwrap(),
        after_b
    );
    assert_eq!(
        inst.backend
            .list_partitions(Some("\u{10FFFF}"), usize::MAX)
            .unwrap(),
        Vec::<String>::new()
    );
}

/// §9.1: a partition is listed exactly while its flushed contents hold a key: not when
/// only opened, not for unflushed writes, not once every key was deleted or cleared and
/// flushed (nor after an empty snapshot was restored and flushed), again once a key is
/// flushed; a live handle's unflushed changes do not change the listing.
pub fn partitions_listed_only_while_flushed_data<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let backend = &inst.backend;
    let listed =
        |names: &[&str]| -> Vec<String> { names.iter().map(|n| (*n).to_owned()).collect() };

    drop(backend.state_store("opened").unwrap());
    {
        let mut unflushed = backend.state_store("unflushed").unwrap();
        unflushed.put(b"k", b"v").unwrap();
        assert_eq!(partitions(backend), listed(&[]));
    }
    assert_eq!(partitions(backend), listed(&[]));

    let mut live = backend.state_store("live").unwrap();
    live.put(b"k", b"v").unwrap();
    live.flush().unwrap();
    assert_eq!(partitions(backend), listed(&["live"]));
    live.clear().unwrap();
    assert_eq!(partitions(backend), listed(&["live"]), "a pending clear");
    live.flush().unwrap();
    assert_eq!(partitions(backend), listed(&[]), "cleared and flushed");
    live.put(b"k2", b"").unwrap();
    live.flush().unwrap();
    assert_eq!(
        partitions(backend),
        listed(&["live"]),
        "an empty value is data"
    );
    live.delete(b"k2").unwrap();
    live.flush().unwrap();
    assert_eq!(
        partitions(backend),
        listed(&[]),
        "every key deleted and flushed"
    );
    live.put(b"k3", b"v").unwrap();
    live.flush().unwrap();
    live.restore(&StateSnapshot::default()).unwrap();
    assert_eq!(partitions(backend), listed(&["live"]), "a pending restore");
    live.flush().unwrap();
    assert_eq!(
        partitions(backend),
        listed(&[]),
        "an empty snapshot restored"
    );

    let mut kept = backend.state_store("kept").unwrap();
    kept.put(b"k", b"v").unwrap();
    kept.flush().unwrap();
    drop(kept);
    let mut kept = backend.state_store("kept").unwrap();
    kept.delete(b"k").unwrap();
    assert_eq!(partitions(backend), listed(&["kept"]), "a pending delete");
    drop(kept);
    assert_eq!(
        partitions(backend),
        listed(&["kept"]),
        "an unflushed delete dropped"
    );
    live.put(b"k", b"v").unwrap();
    live.flush().unwrap();
    assert_eq!(partitions(backend), listed(&["kept", "live"]));
}

/// §2.2, §9.1: a partition cursor that is not a valid partition name is rejected with the
/// name error `state_store` gives, on every backend; a valid one need not exist.
pub fn partitions_listing_rejects_invalid_cursor<B: Backend>() {
    let inst = Instance::<B>::fresh();
    fill_partitions(&inst.backend, &["p".to_owned()]);
    for (name, rule) in invalid_names() {
        for limit in [0, 1] {
            match inst.backend.list_partitions(Some(&name), limit) {
                Err(StateError::Input(InputError::InvalidName {
                    kind: "partition",
                    name: got,
                    rule: got_rule,
                })) => {
                    assert_eq!(got, name);
                    assert_eq!(got_rule, rule, "{name:?}");
                }
                other => panic!("cursor {name:?}: expected InvalidName, got {other:?}"),
            }
        }
    }
    assert_eq!(
        inst.backend.list_partitions(Some("o"), 10).unwrap(),
        vec!["p".to_owned()]
    );
}

// ---------------------------------------------------------------------------------------
// Ledger
// ---------------------------------------------------------------------------------------

/// §9.1: `list_books` pages every book holding an event by byte order of its name: books
/// holding only account openings, books with transactions, and `_system` once an asset is
/// registered; a rejected call creates no book.
pub fn books_listed_in_byte_order_and_paged<B: Backend>() {
    let inst = Instance::<B>::relaxed();
    let ledger: Arc<dyn LedgerStore> = inst.backend.ledger();
    let usd_def = asset_defs().remove(0);
    ledger.register_asset(&usd_def).unwrap();
    let usd = usd_def.id;
    assert_eq!(
        ledger.list_books(None, usize::MAX).unwrap(),
        vec![Book::system()]
    );
    let opened = fill_ledger(&*ledger);
    let cash = account("a", "cash");
    let income = account("a", "cash2");
    ledger
        .commit(
            &Transaction::new(book("a"))
                .debit(&cash, &usd, 5)
                .credit(&income, &usd, 5),
        )
        .unwrap();
    let ghost = account_def(
        &account("ghost", "x"),
        &asset_id("NOPE"),
        AccountKind::Asset,
    );
    assert!(
        ledger
            .open_account(&ghost, &AccountCfg::for_kind(AccountKind::Asset))
            .is_err()
    );
    let reserved = account_def(&account("_other", "x"), &usd, AccountKind::Asset);
    assert!(
        ledger
            .open_account(&reserved, &AccountCfg::for_kind(AccountKind::Asset))
            .is_err()
    );
    assert!(ledger.balance(&account("unread", "x"), None).is_err());

    let mut expected: Vec<Book> = opened.into_keys().collect();
    expected.push(Book::system());
    expected.sort();
    check_pages(
        "list_books",
        &expected,
        |after: Option<&Book>, limit| ledger.list_books(after, limit).unwrap(),
        Book::clone,
    );
    let after_b: Vec<Book> = expected
        .iter()
        .filter(|b| b.as_str() > "b")
        .cloned()
        .collect();
    assert_eq!(
        ledger.list_books(Some(&book("b")), usize::MAX).unwrap(),
        after_b
    );
    for name in ["ghost", "_other", "unread"] {
        assert!(!expected.contains(&book(name)));
    }
}

/// §9.1: `list_assets` pages every registered asset, with its definition, by byte order
/// of its id.
pub fn assets_listed_in_byte_order_and_paged<B: Backend>() {
    let inst = Instance::<B>::relaxed();
    let ledger: Arc<dyn LedgerStore> = inst.backend.ledger();
    let mut expected = asset_defs();
    for def in &expected {
        ledger.register_asset(def).unwrap();
    }
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    check_pages(
        "list_assets",
        &expected,
        |after: Option<&AssetId>, limit| ledger.list_assets(after, limit).unwrap(),
        |def| def.id.clone(),
    );
    let after_b: Vec<AssetDef> = expected
        .iter()
        .filter(|d| d.id.as_str() > "b")
        .cloned()
        .collect();
    assert_eq!(
        ledger
            .list_assets(Some(&asset_id("b")), usize::MAX)
            .unwrap(),
        after_b
    );
}

/// §9.1: `list_accounts` pages one book's accounts by byte order of their paths, each
/// with the definition and configuration it was opened with; books whose names share a
/// prefix never see each other's accounts; a book with no account lists nothing.
pub fn accounts_listed_per_book_in_byte_order_and_paged<B: Backend>() {
    let inst = Instance::<B>::relaxed();
    let ledger: Arc<dyn LedgerStore> = inst.backend.ledger();
    let opened = fill_ledger(&*ledger);
    for (b, expected) in &opened {
        check_pages(
            &format!("list_accounts of {b}"),
            expected,
            |after: Option<&AccountPath>, limit| ledger.list_accounts(b, after, limit).unwrap(),
            |(def, _)| def.id.path.clone(),
        );
        let after_c: Vec<_> = expected
            .iter()
            .filter(|(def, _)| def.id.path.as_str() > "c")
            .cloned()
            .collect();
        let cursor = AccountPath::new("c").unwrap();
        assert_eq!(
            ledger.list_accounts(b, Some(&cursor), usize::MAX).unwrap(),
            after_c
        );
    }
    for empty in [book("unknown"), book("a!"), Book::system(), book("_other")] {
        assert_eq!(
            ledger.list_accounts(&empty, None, usize::MAX).unwrap(),
            vec![],
            "{empty}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Side effects
// ---------------------------------------------------------------------------------------

/// §9.1: `list_output_keys` pages every stored slot (empty ones included) by lyquid
/// bytes, then position, then kind in the order event, call, timer.
pub fn output_keys_listed_in_key_order_and_paged<B: Backend>() {
    let inst = Instance::<B>::relaxed();
    let store: Arc<dyn SideEffectStore> = inst.backend.side_effects();
    let expected = fill_outputs(&*store);
    assert_eq!(expected.len(), output_keys().len());
    check_pages(
        "list_output_keys",
        &expected,
        |after: Option<&SideEffectKey>, limit| store.list_output_keys(after, limit).unwrap(),
        |key| *key,
    );
    let between = SideEffectKey {
        lyquid: LyquidId([0x7F; 20]),
        pos: ChainPos::new(0, 5),
        kind: SideEffectKind::Call,
    };
    let after: Vec<SideEffectKey> = expected.iter().filter(|k| **k > between).copied().collect();
    assert_eq!(
        store.list_output_keys(Some(&between), usize::MAX).unwrap(),
        after
    );
}

/// §9.1: `list_inter_call_output_keys` pages every stored inter-call output (completed
/// without payload included) by callee bytes, then position, then sequence number.
pub fn inter_call_output_keys_listed_in_key_order_and_paged<B: Backend>() {
    let inst = Instance::<B>::relaxed();
    let store: Arc<dyn SideEffectStore> = inst.backend.side_effects();
    let expected = fill_call_outputs(&*store);
    check_pages(
        "list_inter_call_output_keys",
        &expected,
        |after: Option<&InterCallOutputKey>, limit| {
            store.list_inter_call_output_keys(after, limit).unwrap()
        },
        |key| *key,
    );
    let between = InterCallOutputKey {
        callee: LyquidId([0x80; 20]),
        pos: ChainPos(1 << 127),
        inter_call_seq: 300,
    };
    let after: Vec<_> = expected.iter().filter(|k| **k > between).copied().collect();
    assert_eq!(
        store
            .list_inter_call_output_keys(Some(&between), usize::MAX)
            .unwrap(),
        after
    );
}

/// §9.1: `list_inbound_callees` pages every callee with an inbound call once, by the
/// bytes of its id, however many calls it has.
pub fn inbound_callees_listed_once_in_id_order_and_paged<B: Backend>() {
    let inst = Instance::<B>::relaxed();
    let store: Arc<dyn SideEffectStore> = inst.backend.side_effects();
    let expected = fill_inbound(&*store);
    check_pages(
        "list_inbound_callees",
        &expected,
        |after: Option<&LyquidId>, limit| store.list_inbound_callees(after, limit).unwrap(),
        |callee| *callee,
    );
    let between = LyquidId([0x7F; 20]);
    let mut just_above = between;
    just_above.0[19] = 0x80;
    let after: Vec<_> = expected.iter().filter(|c| **c > between).copied().collect();
    assert_eq!(
        store
            .list_inbound_callees(Some(&between), usize::MAX)
            .unwrap(),
        after
    );
    let after: Vec<_> = expected
        .iter()
        .filter(|c| **c > just_above)
        .copied()
        .collect();
    assert_eq!(
        store
            .list_inbound_callees(Some(&just_above), usize::MAX)
            .unwrap(),
        after
    );
    // Outputs and inter-call outputs are other tables: they add no callee.
    fill_outputs(&*store);
    fill_call_outputs(&*store);
    assert_eq!(
        store.list_inbound_callees(None, usize::MAX).unwrap(),
        expected
    );
}

// ---------------------------------------------------------------------------------------
// Segments
// ---------------------------------------------------------------------------------------

/// §7.5, §9.1: `list_sessions_page` pages the sessions of `list_sessions` ascending by id
/// bytes (its reverse): sessions whose segments hold only trace entries are not listed.
pub fn sessions_paged_ascending<B: Backend>() {
    let inst = Instance::<B>::relaxed();
    let log: Arc<dyn SegmentLogStore> = inst.backend.segment_log();
    let live = fill_segments(&*log);
    let expected: Vec<SessionId> = live.keys().copied().collect();
    let mut newest_first = log.list_sessions().unwrap();
    newest_first.reverse();
    assert_eq!(newest_first, expected, "list_sessions, reversed");
    check_pages(
        "list_sessions_page",
        &expected,
        |after: Option<&SessionId>, limit| log.list_sessions_page(after, limit).unwrap(),
        |session| *session,
    );
    let between = SessionId::from_u128(0x100);
    let after: Vec<_> = expected.iter().filter(|s| **s > between).copied().collect();
    assert_eq!(
        log.list_sessions_page(Some(&between), usize::MAX).unwrap(),
        after
    );
}

/// §7.5, §9.1: `list_segments_page` pages a session's segments of `list_segments` ascending
/// by id bytes (its reverse): segments created empty are listed, segments holding only
/// trace entries and other sessions' segments are not; an unknown session lists nothing.
pub fn segments_paged_ascending<B: Backend>() {
    let inst = Instance::<B>::relaxed();
    let log: Arc<dyn SegmentLogStore> = inst.backend.segment_log();
    let live = fill_segments(&*log);
    for (session, expected) in &live {
        let mut newest_first = log.list_segments(*session).unwrap();
        newest_first.reverse();
        assert_eq!(
            &newest_first, expected,
            "list_segments of {session}, reversed"
        );
        check_pages(
            &format!("list_segments_page of {session}"),
            expected,
            |after: Option<&SegmentId>, limit| {
                log.list_segments_page(*session, after, limit).unwrap()
            },
            |segment| *segment,
        );
    }
    for unknown in [SessionId::from_u128(0x55), SessionId::from_u128(0)] {
        assert_eq!(
            log.list_segments_page(unknown, None, usize::MAX).unwrap(),
            vec![]
        );
    }
}
