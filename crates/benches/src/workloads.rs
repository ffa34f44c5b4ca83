//! Seeded workload generators, shared by the criterion benches and the report so both
//! measure exactly the same keys, values, drafts and records (contract §8.1: random
//! 16-byte keys, point reads at uniformly random keys).
//!
//! Everything here is a pure function of [`SEED`] and an index: the same run twice, or the
//! criterion bench and the report, touch the same bytes in the same order.
//!
//! # Keys
//! Keys are [`KEY_LEN`] = 16 bytes: an 8-byte *group prefix* (a bijective scramble of
//! `index / GROUP_LEN`, so consecutive groups land far apart in key order) followed by the
//! 8-byte big-endian slot `index % GROUP_LEN`. A dataset of `n` keys holds indexes `0..n`
//! (`n` a multiple of [`GROUP_LEN`]); every group prefix matches exactly [`GROUP_LEN`] = 100
//! keys, which is what the prefix and range scans read. Indexes `>= n` are absent, which
//! gives fresh keys for inserts and guaranteed misses.

use bytes::Bytes;
use store_api::{
    AccountCfg, AccountDef, AccountId, AccountKind, AssetDef, AssetId, Book, CallOrderKey,
    ChainPos, EventOutputs, InboundInterCall, InputError, InterCall, LyquidId, SegmentId,
    SessionId, SideEffectKey, SideEffectKind, Transaction,
};

/// The seed of every generator.
pub const SEED: u64 = 0x5EED_0000_BE4C_0001;

/// Bytes of every key.
pub const KEY_LEN: usize = 16;

/// Bytes of every value, entry and payload.
pub const VALUE_LEN: usize = 100;

/// Keys per group prefix: the length of every prefix and range scan.
pub const GROUP_LEN: u64 = 100;

/// The state dataset sizes of the full matrix: 1k, 100k and 1M keys.
pub const STATE_SIZES: [u64; 3] = [1_000, 100_000, 1_000_000];

/// The state dataset sizes of the quick matrix (1M is left out to stay within minutes).
pub const QUICK_STATE_SIZES: [u64; 2] = [1_000, 100_000];

/// Keys preloaded into the `StoreEngine` (and into the raw engines beside it).
pub const ENGINE_KEYS: u64 = 100_000;

/// Pairs per batch when preloading the engine: each batch-log entry holds this many puts.
pub const ENGINE_LOAD_BATCH: u64 = 100;

/// Keys per `get_many` and per `delete_batch`.
pub const MANY: usize = 100;

/// Rows per scan, page and history read.
pub const PAGE: usize = 100;

/// Accounts of the benchmark ledger book.
pub const LEDGER_ACCOUNTS: u64 = 100;

/// Drafts per `commit_batch`.
pub const COMMIT_BATCH: usize = 1_000;

/// Transactions preloaded into the ledger (about 200 per account), so that every account
/// has more history than one page.
pub const LEDGER_PRELOAD: u64 = 10_000;

/// Entries of the segment that `read_all` reads.
pub const SEGMENT_ENTRIES: u64 = 10_000;

/// Side-effect slots preloaded before the reads.
pub const SIDE_EFFECT_SLOTS: u64 = 10_000;

/// Payloads per side-effect slot.
pub const OUTPUTS_PER_SLOT: usize = 3;

/// Slots read in turn by the cached `read_outputs` (well under the default cache size).
pub const HOT_SLOTS: u64 = 1_000;

/// Inbound inter-calls preloaded for the callee that is paged through.
pub const INBOUND_CALLS: u64 = 1_000;

/// The SplitMix64 finalizer: a bijection on `u64` that mixes every input bit.
#[inline]
pub const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small seeded generator (SplitMix64): deterministic, fast, good enough for picking
/// indexes. Not for cryptography.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `stream` (different streams give independent sequences).
    pub fn new(stream: u64) -> Self {
        Rng(mix(SEED ^ mix(stream)))
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// A number in `0..n` (`0` when `n` is 0), by multiply-shift (bias below 2^-32 for the
    /// sizes used here).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Fills `out` with random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

/// The 8-byte prefix of group `group`.
#[inline]
pub fn group_prefix(group: u64) -> [u8; 8] {
    mix(group ^ SEED).to_be_bytes()
}

/// The key of index `i`.
#[inline]
pub fn key(i: u64) -> [u8; KEY_LEN] {
    let mut out = [0u8; KEY_LEN];
    out[..8].copy_from_slice(&group_prefix(i / GROUP_LEN));
    out[8..].copy_from_slice(&(i % GROUP_LEN).to_be_bytes());
    out
}

/// A key that is in no dataset: its index lies far beyond every dataset and every insert.
#[inline]
pub fn miss_key(j: u64) -> [u8; KEY_LEN] {
    key((1 << 48) + j)
}

/// The inclusive key range `[first, last]` of group `group`: exactly [`GROUP_LEN`] keys
/// of any dataset holding the group.
pub fn group_range(group: u64) -> ([u8; KEY_LEN], [u8; KEY_LEN]) {
    let prefix = group_prefix(group);
    let mut first = [0u8; KEY_LEN];
    first[..8].copy_from_slice(&prefix);
    let mut last = [0xFFu8; KEY_LEN];
    last[..8].copy_from_slice(&prefix);
    (first, last)
}

/// The value of index `i` at `version` (an update writes a new version).
#[inline]
pub fn value(i: u64, version: u64) -> [u8; VALUE_LEN] {
    let mut out = [0u8; VALUE_LEN];
    Rng::new(i ^ version.rotate_left(40)).fill(&mut out);
    out
}

/// The pairs of indexes `range`, at version 0, as owned keys and values.
pub fn pairs(range: std::ops::Range<u64>) -> Vec<([u8; KEY_LEN], [u8; VALUE_LEN])> {
    range.map(|i| (key(i), value(i, 0))).collect()
}

/// The benchmark ledger: one book, one asset, [`LEDGER_ACCOUNTS`] asset accounts without
/// floor, and two-posting drafts between two distinct random accounts.
#[derive(Debug, Clone)]
pub struct LedgerSpec {
    /// The book every account and draft is in.
    pub book: Book,
    /// The only asset.
    pub asset: AssetDef,
    /// The accounts, in index order.
    pub accounts: Vec<AccountId>,
}

impl LedgerSpec {
    /// The benchmark ledger's definitions.
    pub fn new() -> Result<Self, InputError> {
        let book = Book::new("bench")?;
        let accounts = (0..LEDGER_ACCOUNTS)
            .map(|i| AccountId::new("bench", &format!("assets:acct-{i:03}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LedgerSpec {
            book,
            asset: AssetDef {
                id: AssetId::new("USD")?,
                precision: 2,
                name: "US dollar".to_owned(),
            },
            accounts,
        })
    }

    /// Every account's definition and configuration.
    pub fn account_defs(&self) -> Vec<(AccountDef, AccountCfg)> {
        self.accounts
            .iter()
            .map(|id| {
                let def = AccountDef {
                    id: id.clone(),
                    asset: self.asset.id.clone(),
                    kind: AccountKind::Asset,
                };
                (def, AccountCfg::for_kind(AccountKind::Asset))
            })
            .collect()
    }

    /// A two-posting draft drawn from `rng`: debit one account, credit another, 1 to 1000
    /// minor units, no idempotency key.
    pub fn draft(&self, rng: &mut Rng) -> Transaction {
        let n = self.accounts.len() as u64;
        let from = rng.below(n);
        let to = (from + 1 + rng.below(n - 1)) % n;
        let amount = 1 + rng.below(1_000);
        Transaction::new(self.book.clone())
            .debit(&self.accounts[from as usize], &self.asset.id, amount)
            .credit(&self.accounts[to as usize], &self.asset.id, amount)
    }

    /// A random account.
    pub fn account(&self, rng: &mut Rng) -> &AccountId {
        &self.accounts[rng.below(self.accounts.len() as u64) as usize]
    }
}

/// The session and segment of segment `i`.
pub fn segment_ids(i: u64) -> (SessionId, SegmentId) {
    let base = u128::from(mix(SEED ^ i)) << 64;
    (
        SessionId::from_u128(base | 1),
        SegmentId::from_u128(base | (u128::from(i) << 1) | 2),
    )
}

/// The Lyquid every side-effect workload writes for.
pub fn lyquid(n: u8) -> LyquidId {
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(&SEED.to_be_bytes());
    id[19] = n;
    LyquidId(id)
}

/// The side-effect slot of index `i` (an event slot at block `i`).
pub fn side_effect_key(i: u64) -> SideEffectKey {
    SideEffectKey {
        lyquid: lyquid(1),
        pos: ChainPos::new(i, 0),
        kind: SideEffectKind::Event,
    }
}

/// The outputs of slot `i`: [`OUTPUTS_PER_SLOT`] payloads of [`VALUE_LEN`] bytes.
pub fn side_effect_outputs(i: u64) -> EventOutputs {
    EventOutputs(
        (0..OUTPUTS_PER_SLOT as u64)
            .map(|k| Bytes::copy_from_slice(&value(i, k)))
            .collect(),
    )
}

/// Inbound call `i` of the benchmark callee: made and delivered at block `i`.
pub fn inbound_call(i: u64) -> InboundInterCall {
    InboundInterCall {
        callee: lyquid(2),
        order_key: CallOrderKey {
            pos: ChainPos::new(i, 0),
            seq: 0,
        },
        call: InterCall {
            caller: lyquid(3),
            pos: ChainPos::new(i, 0),
            payload: Bytes::copy_from_slice(&value(i, 0)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn generators_are_deterministic_and_sized() {
        assert_eq!(key(12_345), key(12_345));
        assert_eq!(value(7, 1), value(7, 1));
        assert_ne!(value(7, 0), value(7, 1));
        assert_eq!(key(0).len(), KEY_LEN);
        assert_eq!(value(0, 0).len(), VALUE_LEN);
        let mut a = Rng::new(3);
        let mut b = Rng::new(3);
        assert_eq!(a.next_u64(), b.next_u64());
        assert!((0..1000).all(|_| a.below(10) < 10));
    }

    #[test]
    fn a_group_range_holds_exactly_its_group() {
        let keys: BTreeSet<[u8; KEY_LEN]> = (0..10_000).map(key).collect();
        assert_eq!(keys.len(), 10_000);
        let (first, last) = group_range(42);
        let in_range: Vec<_> = keys.range(first..=last).collect();
        assert_eq!(in_range.len(), GROUP_LEN as usize);
        assert!(in_range.iter().all(|k| k[..8] == group_prefix(42)));
        assert!(!keys.contains(&miss_key(0)));
    }

    #[test]
    fn drafts_balance_between_two_accounts() {
        let spec = LedgerSpec::new().unwrap();
        let mut rng = Rng::new(1);
        for _ in 0..100 {
            let tx = spec.draft(&mut rng);
            assert_eq!(tx.postings.len(), 2);
            assert_ne!(tx.postings[0].account, tx.postings[1].account);
            assert_eq!(tx.postings[0].amount, tx.postings[1].amount);
        }
        assert!(inbound_call(5).check().is_ok());
        assert_ne!(segment_ids(1), segment_ids(2));
    }
}
