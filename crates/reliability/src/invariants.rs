//! Invariants every backend must hold at every moment, checked through the public traits:
//! after a crash, while other threads write, and after random operation sequences.

use std::collections::BTreeMap;

use store_api::{
    AccountCfg, AccountId, AssetId, Book, Direction, LedgerEvent, LedgerStore, SegmentLogStore,
    StoreEngine,
};

use crate::failure::OrFail;
use crate::{Failure, ensure, records};

/// The batch log is contiguous: every sequence number from the oldest retained one up to
/// `current_sequence()` has its batch, and nothing lies beyond it. Returns the sequence.
pub fn engine_log<E: StoreEngine + ?Sized>(engine: &E) -> Result<u64, Failure> {
    let seq = engine.current_sequence();
    let oldest = engine
        .oldest_retained_batch()
        .or_fail("oldest_retained_batch")?;
    if let Some(first) = oldest {
        ensure!(
            first >= 1 && first <= seq,
            "oldest retained batch {first} lies outside 1..={seq}"
        );
        for s in first..=seq {
            let batch = engine.get_batch(s).or_fail(format!("get_batch({s})"))?;
            ensure!(
                batch.is_some(),
                "batch {s} is missing from the log (retained {first}..={seq}): sequence numbers are not contiguous"
            );
        }
    }
    let beyond = engine
        .get_batch(seq + 1)
        .or_fail(format!("get_batch({})", seq + 1))?;
    ensure!(
        beyond.is_none(),
        "batch {} exists beyond current_sequence {seq}",
        seq + 1
    );
    Ok(seq)
}

/// What [`ledger_book`] counted in one book.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BookCounts {
    /// Events in the book.
    pub events: u64,
    /// Transactions posted.
    pub transactions: u64,
    /// Accounts opened.
    pub accounts: u64,
}

/// A book is consistent: events numbered 1, 2, 3, ... with non-decreasing times, and a
/// trial balance with debits equal to credits for every asset.
///
/// When `quiescent` (no writer is running), also: the trial balance equals the sums of the
/// posted transactions, and every account's balance equals the sum of its postings (on its
/// normal side), its history's running balances and its last touching sequence number.
/// Those compare several reads, which concurrent commits may separate.
pub fn ledger_book<L: LedgerStore + ?Sized>(
    ledger: &L,
    book: &Book,
    quiescent: bool,
) -> Result<BookCounts, Failure> {
    let events = ledger
        .read_events(book, None, usize::MAX)
        .or_fail(format!("read_events({book})"))?;
    let mut counts = BookCounts::default();
    let mut sums: BTreeMap<AssetId, (u128, u128)> = BTreeMap::new();
    let mut accounts: Vec<(AccountId, AccountCfg)> = Vec::new();
    let mut last_at = None;
    for (i, event) in events.iter().enumerate() {
        let expected = i as u64 + 1;
        ensure!(
            event.seq == expected,
            "book {book}: event {i} has seq {} (expected {expected}): sequence numbers are not contiguous",
            event.seq
        );
        if let Some(prev) = last_at {
            ensure!(
                event.at >= prev,
                "book {book}: time goes back at seq {}",
                event.seq
            );
        }
        last_at = Some(event.at);
        counts.events += 1;
        match &event.event {
            LedgerEvent::TransactionPosted(tx) => {
                counts.transactions += 1;
                ensure!(
                    tx.seq == event.seq,
                    "book {book}: transaction at seq {} says seq {}",
                    event.seq,
                    tx.seq
                );
                for p in &tx.postings {
                    let s = sums.entry(p.asset.clone()).or_default();
                    match p.direction {
                        Direction::Debit => s.0 += u128::from(p.amount),
                        Direction::Credit => s.1 += u128::from(p.amount),
                    }
                }
            }
            LedgerEvent::AccountOpened { def, cfg } => {
                counts.accounts += 1;
                accounts.push((def.id.clone(), *cfg));
            }
            LedgerEvent::AssetRegistered(_) => {}
        }
    }
    let rows = ledger
        .trial_balance(book, None)
        .or_fail(format!("trial_balance({book})"))?;
    for row in &rows {
        ensure!(
            row.debits == row.credits,
            "book {book}: trial balance of {} has debits {} != credits {}",
            row.asset,
            row.debits,
            row.credits
        );
        let summed = sums.get(&row.asset).copied().unwrap_or_default();
        ensure!(
            !quiescent || summed == (row.debits, row.credits),
            "book {book}: trial balance of {} is {}/{} but its transactions sum to {}/{}",
            row.asset,
            row.debits,
            row.credits,
            summed.0,
            summed.1
        );
    }
    if !quiescent {
        return Ok(counts);
    }
    for (asset, (d, c)) in &sums {
        if *d != 0 || *c != 0 {
            ensure!(
                rows.iter().any(|r| &r.asset == asset),
                "book {book}: asset {asset} has postings but no trial balance row"
            );
        }
    }
    for (account, cfg) in &accounts {
        account_balance(ledger, account, cfg)?;
    }
    Ok(counts)
}

/// An account's balance equals the signed sum of its postings, each posting's
/// `balance_after` is the running sum (brought into the `i64` range, as
/// `PostingRecord::balance_after` documents for a value midway through a transaction), and
/// `updated_seq` is its last posting's seq.
pub fn account_balance<L: LedgerStore + ?Sized>(
    ledger: &L,
    account: &AccountId,
    cfg: &AccountCfg,
) -> Result<(), Failure> {
    let balance = ledger
        .balance(account, None)
        .or_fail(format!("balance({account})"))?;
    let mut running: i128 = 0;
    let mut last_seq = 0u64;
    let mut after = 0u64;
    loop {
        let page = ledger
            .account_history(account, after, 64)
            .or_fail(format!("account_history({account})"))?;
        let Some(last) = page.last() else { break };
        let next_after = last.seq;
        for p in &page {
            ensure!(
                p.seq > after,
                "{account}: history after {after} returned seq {}",
                p.seq
            );
            let signed = i128::from(p.amount);
            running += if p.direction == cfg.normal_side {
                signed
            } else {
                -signed
            };
            let in_range = running.clamp(i128::from(i64::MIN), i128::from(i64::MAX));
            ensure!(
                i128::from(p.balance_after) == in_range,
                "{account}: posting at seq {} has balance_after {} but the postings sum to {running}",
                p.seq,
                p.balance_after
            );
            last_seq = p.seq;
        }
        after = next_after;
    }
    ensure!(
        i128::from(balance.amount) == running,
        "{account}: balance {} but its postings sum to {running}",
        balance.amount
    );
    ensure!(
        balance.updated_seq == last_seq,
        "{account}: updated_seq {} but its last posting is at seq {last_seq}",
        balance.updated_seq
    );
    Ok(())
}

/// Every listed segment holds whole [`records`] only, its count matches its entries, and
/// it is found under the session that lists it. Returns the number of entries checked.
pub fn segments_whole<S: SegmentLogStore + ?Sized>(log: &S) -> Result<u64, Failure> {
    let mut checked = 0u64;
    for session in log.list_sessions().or_fail("list_sessions")? {
        for segment in log.list_segments(session).or_fail("list_segments")? {
            let entries = log
                .read_all(session, segment)
                .or_fail(format!("read_all({segment}) of a listed segment"))?;
            let count = log
                .read_entry_count(session, segment)
                .or_fail("read_entry_count")?;
            ensure!(
                count >= entries.len() as u64,
                "segment {segment}: read_entry_count {count} < {} entries read",
                entries.len()
            );
            for (i, entry) in entries.iter().enumerate() {
                ensure!(
                    records::decode(entry).is_some(),
                    "segment {segment}: entry {i} of {} bytes is not one whole record",
                    entry.len()
                );
            }
            let owner = log
                .lookup_session_of(segment)
                .or_fail("lookup_session_of")?;
            ensure!(
                owner == Some(session),
                "segment {segment} is listed under {session} but lookup says {owner:?}"
            );
            checked += entries.len() as u64;
        }
    }
    Ok(checked)
}
