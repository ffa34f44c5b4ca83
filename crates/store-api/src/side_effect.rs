//! `SideEffectStore`: insert-only, replay-idempotent execution side effects
//! (`docs/contract.md` section 5).
//!
//! # Terms
//! This store serves an executor of **Lyquids**: contract instances, programs that run at
//! positions of a chain, each known by a 20-byte [`LyquidId`]. The store does not run
//! anything; it records what executions produced, keyed by who ran and where.
//!
//! - **Chain and [`ChainPos`]**: the chain is a sequence of blocks, each holding numbered
//!   entries. A `ChainPos` is one place on it, a block number and an index within the
//!   block packed into a `u128` ([`ChainPos::new`], [`ChainPos::block`],
//!   [`ChainPos::index`]), so positions order by block, then index.
//! - **Side effect**: an output of one execution, the execution being a Lyquid at a
//!   position. Its slot is a [`SideEffectKey`] (lyquid, position, [`SideEffectKind`]:
//!   events emitted, outputs of an outbound call, outputs of a timer) and its value the
//!   payloads in the order produced ([`EventOutputs`]).
//! - **Replay**: running an execution again, the same Lyquid at the same position, after
//!   it already ran. A replay must produce what the first run produced, so the store is
//!   insert-only: writing a slot again with the same content is accepted,
//!   writing it with different content is a conflict
//!   ([`SideEffectError::ConflictingReplay`]), which is how a diverging replay is caught.
//! - **Inter-call**: a call from one Lyquid (the caller) to another (the callee). Its
//!   result is stored under an [`InterCallOutputKey`]: the callee, the position where the
//!   call was made, and `inter_call_seq`, which numbers the calls made at that position.
//!   A completed call may have no payload ([`CallEventOutput`] is `None`), which differs
//!   from a call never recorded.
//! - **Inbound call**: an inter-call seen from the callee, waiting in the callee's queue
//!   ([`InboundInterCall`]). The queue is ordered by [`CallOrderKey`]: the position at
//!   which the callee receives the call, then a sequence number among calls received at
//!   the same position. A call cannot be received before it was made
//!   ([`MalformedCall::DeliveredBeforeMade`]).
//!
//! ```
//! use store_api::*;
//!
//! let backend = store_mem::MemBackend::new(OpenOptions::default());
//! let effects = backend.side_effects();
//! let (alice, bob) = (LyquidId([1; 20]), LyquidId([2; 20]));
//! // Alice, running at block 7 entry 3, calls Bob; Bob receives the call at block 8.
//! let call = InterCall { caller: alice, pos: ChainPos::new(7, 3), payload: "ping".into() };
//! let order_key = CallOrderKey { pos: ChainPos::new(8, 0), seq: 0 };
//! effects.append_inbound_inter_calls(&[InboundInterCall { callee: bob, order_key, call }])?;
//! assert_eq!(effects.read_inbound_inter_calls(&bob, None, None, 10)?.len(), 1);
//! // Bob's answer is the call's output, under the position where Alice called.
//! let output = InterCallOutputKey { callee: bob, pos: ChainPos::new(7, 3), inter_call_seq: 0 };
//! effects.upsert_inter_call_output(&output, &Some("pong".into()))?;
//! assert_eq!(effects.read_inter_call_output(&output)?, Some(Some("pong".into())));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{InputError, StorageError};
use crate::limits::check_value_len;
use crate::parse::{self, ParseError};

/// A Lyquid (contract instance) id: 20 bytes.
///
/// ```
/// # use store_api::LyquidId;
/// let id: LyquidId = "0x00112233445566778899aabbccddeeff00112233".parse()?;
/// assert_eq!(id.0[1], 0x11);
/// assert_eq!(id.to_string(), "0x00112233445566778899aabbccddeeff00112233");
/// assert_eq!(LyquidId::from([7; 20]), LyquidId([7; 20]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct LyquidId(pub [u8; 20]);

impl fmt::Debug for LyquidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LyquidId({self})")
    }
}

/// `0x` and the 40 lowercase hexadecimal digits of the 20 bytes, e.g.
/// `0x00112233445566778899aabbccddeeff00112233`; `FromStr` reads it back.
impl fmt::Display for LyquidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// What a Lyquid id's text should look like.
const LYQUID_ID_EXPECTED: &str = "40 hexadecimal digits (20 bytes), optionally prefixed with 0x, \
     such as 0x00112233445566778899aabbccddeeff00112233";

/// Reads 40 hexadecimal digits in either case, with or without a `0x` (or `0X`) prefix;
/// anything else is a [`ParseError`].
impl FromStr for LyquidId {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let digits = s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .unwrap_or(s);
        parse::hex_bytes("Lyquid id", s, digits, LYQUID_ID_EXPECTED).map(LyquidId)
    }
}

impl From<[u8; 20]> for LyquidId {
    fn from(bytes: [u8; 20]) -> Self {
        LyquidId(bytes)
    }
}

impl From<LyquidId> for [u8; 20] {
    fn from(id: LyquidId) -> Self {
        id.0
    }
}

/// A position on the chain: the block number in the high bits (shifted left by 32) and the
/// index within the block in the low 32 bits, so positions order by block, then index.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct ChainPos(pub u128);

impl ChainPos {
    /// The position of entry `index` of block `block`.
    ///
    /// ```
    /// # use store_api::ChainPos;
    /// let pos = ChainPos::new(7, 3);
    /// assert_eq!((pos.block(), pos.index()), (7, 3));
    /// assert_eq!(pos, ChainPos((7 << 32) | 3));
    /// assert!(ChainPos::new(7, u32::MAX) < ChainPos::new(8, 0)); // block first, then index
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn new(block: u64, index: u32) -> Self {
        ChainPos(((block as u128) << 32) | index as u128)
    }

    /// The block number.
    pub const fn block(self) -> u64 {
        (self.0 >> 32) as u64
    }

    /// The index within the block.
    pub const fn index(self) -> u32 {
        self.0 as u32
    }
}

/// What kind of side effect a slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SideEffectKind {
    /// Events emitted by a call.
    Event,
    /// Outputs of an outbound call.
    Call,
    /// Outputs of a timer or scheduled task.
    Timer,
}

impl SideEffectKind {
    /// A stable one-byte tag, for key encodings.
    ///
    /// ```
    /// # use store_api::*;
    /// assert_eq!(SideEffectKind::Call.tag(), 1);
    /// let timer = SideEffectKind::Timer;
    /// assert_eq!(SideEffectKind::from_tag(timer.tag()), Some(timer));
    /// assert_eq!(SideEffectKind::from_tag(9), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn tag(self) -> u8 {
        match self {
            SideEffectKind::Event => 0,
            SideEffectKind::Call => 1,
            SideEffectKind::Timer => 2,
        }
    }

    /// The kind of a tag written by [`tag`](Self::tag).
    pub const fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            0 => Some(SideEffectKind::Event),
            1 => Some(SideEffectKind::Call),
            2 => Some(SideEffectKind::Timer),
            _ => None,
        }
    }
}

/// The slot of one execution's side effects. Orders by lyquid, then position, then kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SideEffectKey {
    /// The Lyquid that executed.
    pub lyquid: LyquidId,
    /// Where on the chain it executed.
    pub pos: ChainPos,
    /// Which kind of side effect.
    pub kind: SideEffectKind,
}

/// A slot's output payloads, in the order they were produced.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventOutputs(pub Vec<Bytes>);

impl EventOutputs {
    /// Total payload bytes; at most [`MAX_VALUE_LEN`](crate::MAX_VALUE_LEN) per slot.
    ///
    /// ```
    /// # use store_api::*;
    /// let outputs = EventOutputs(vec!["ab".into(), "".into(), "cde".into()]);
    /// assert_eq!(outputs.payload_len(), 5);
    /// assert_eq!(outputs.check(), Ok(()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn payload_len(&self) -> usize {
        self.0.iter().map(Bytes::len).sum()
    }

    /// Checks the slot against the value limit.
    pub fn check(&self) -> Result<(), InputError> {
        check_value_len(self.payload_len())
    }
}

/// The output slot of one inter-Lyquid call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InterCallOutputKey {
    /// The Lyquid that was called.
    pub callee: LyquidId,
    /// Where the call was made.
    pub pos: ChainPos,
    /// Which call of that position.
    pub inter_call_seq: u32,
}

/// A completed inter-call's output: `None` when it completed without payload.
pub type CallEventOutput = Option<Bytes>;

/// Orders the inbound calls of one callee: by delivery position, then by sequence within it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct CallOrderKey {
    /// The position at which the callee receives the call.
    pub pos: ChainPos,
    /// Order among calls delivered at the same position.
    pub seq: u32,
}

/// One inter-Lyquid call as made by its caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterCall {
    /// The Lyquid that made the call.
    pub caller: LyquidId,
    /// Where the call was made.
    pub pos: ChainPos,
    /// The call's input.
    pub payload: Bytes,
}

/// A call waiting in a callee's inbound queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundInterCall {
    /// The Lyquid that receives the call.
    pub callee: LyquidId,
    /// Its place in the callee's queue.
    pub order_key: CallOrderKey,
    /// The call.
    pub call: InterCall,
}

/// Why an inbound call record was refused by
/// [`append_inbound_inter_calls`](SideEffectStore::append_inbound_inter_calls).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MalformedCall {
    /// The call is ordered before the position it was made at (`order_key.pos < call.pos`).
    DeliveredBeforeMade,
    /// The payload is larger than [`MAX_VALUE_LEN`](crate::MAX_VALUE_LEN).
    PayloadTooLarge {
        /// The payload's size.
        len: usize,
    },
}

impl fmt::Display for MalformedCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MalformedCall::DeliveredBeforeMade => {
                f.write_str("the call is ordered before the position it was made at")
            }
            MalformedCall::PayloadTooLarge { len } => write!(
                f,
                "payload of {len} bytes is larger than the limit of {} bytes",
                crate::limits::MAX_VALUE_LEN
            ),
        }
    }
}

impl InboundInterCall {
    /// Checks the record's own invariants (not its relation to stored records).
    ///
    /// ```
    /// # use store_api::*;
    /// let (caller, pos) = (LyquidId([1; 20]), ChainPos::new(7, 0));
    /// let call = InterCall { caller, pos, payload: "ping".into() };
    /// let early = CallOrderKey { pos: ChainPos::new(6, 0), seq: 0 }; // before block 7
    /// let record = InboundInterCall { callee: LyquidId([2; 20]), order_key: early, call };
    /// assert_eq!(record.check(), Err(MalformedCall::DeliveredBeforeMade));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check(&self) -> Result<(), MalformedCall> {
        if self.order_key.pos < self.call.pos {
            return Err(MalformedCall::DeliveredBeforeMade);
        }
        if check_value_len(self.call.payload.len()).is_err() {
            return Err(MalformedCall::PayloadTooLarge {
                len: self.call.payload.len(),
            });
        }
        Ok(())
    }
}

/// Errors of [`SideEffectStore`].
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SideEffectError {
    /// A payload broke the common limits; nothing was written.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A slot already holds different outputs: a replay diverged. Nothing of the call was
    /// written.
    #[error("replay conflict: slot {key:?} already holds different outputs")]
    ConflictingReplay {
        /// The slot in conflict.
        key: SideEffectKey,
    },
    /// An inter-call output slot already holds a different output.
    #[error("replay conflict: inter-call output {key:?} already holds a different output")]
    ConflictingCallOutputReplay {
        /// The slot in conflict.
        key: InterCallOutputKey,
    },
    /// A different inbound call is already stored at this place of the callee's queue.
    /// Nothing of the call was written.
    #[error("replay conflict: callee {callee:?} already holds a different call at {order_key:?}")]
    ConflictingInboundCall {
        /// The callee.
        callee: LyquidId,
        /// The place in its queue.
        order_key: CallOrderKey,
    },
    /// An inbound call record is malformed. Nothing of the call was written.
    #[error("malformed inbound call for {callee:?} at {order_key:?}: {reason}")]
    MalformedInboundCall {
        /// The callee.
        callee: LyquidId,
        /// The record's place in the queue.
        order_key: CallOrderKey,
        /// What is wrong with it.
        reason: MalformedCall,
    },
    /// The engine underneath failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl crate::error::StoreError for SideEffectError {
    fn storage(&self) -> Option<&StorageError> {
        match self {
            SideEffectError::Storage(e) => Some(e),
            _ => None,
        }
    }

    fn storage_mut(&mut self) -> Option<&mut StorageError> {
        match self {
            SideEffectError::Storage(e) => Some(e),
            _ => None,
        }
    }
}

/// Insert-only, replay-idempotent execution side effects.
///
/// # Guarantees
/// - Insert-only: a slot, once written, never changes. Writing the same content again is
///   accepted (replay idempotency); different content is a conflict, and a call that fails
///   writes nothing at all.
/// - [`read_outputs`](Self::read_outputs) is served through an LRU cache of
///   [`OpenOptions::side_effect_cache_size`](crate::OpenOptions) entries that only ever
///   holds what the store holds; the cache lock is never held across I/O.
/// - One writer per keyspace at a time (writes are serialized), any number of concurrent
///   readers.
///
/// ```
/// use std::collections::BTreeMap;
/// use store_api::*;
///
/// let backend = store_mem::MemBackend::new(OpenOptions::default());
/// let effects = backend.side_effects();
/// let (lyquid, pos) = (LyquidId([1; 20]), ChainPos::new(7, 0));
/// let key = SideEffectKey { lyquid, pos, kind: SideEffectKind::Event };
/// let outputs = BTreeMap::from([(key, EventOutputs(vec!["minted".into()]))]);
/// effects.write_outputs(&outputs)?; // the first execution records what it produced
/// effects.write_outputs(&outputs)?; // a replay records the same: accepted
/// assert_eq!(effects.read_outputs(&key)?, Some(EventOutputs(vec!["minted".into()])));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait SideEffectStore: Send + Sync {
    /// Inserts every slot of `outputs`, atomically.
    ///
    /// A slot already stored with equal outputs is accepted; with different outputs the
    /// call fails with [`SideEffectError::ConflictingReplay`] naming the first such slot,
    /// and nothing from the call is written.
    ///
    /// ```
    /// # use store_api::*; use std::collections::BTreeMap;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let effects = backend.side_effects();
    /// let (lyquid, pos) = (LyquidId([1; 20]), ChainPos::new(7, 0));
    /// let key = SideEffectKey { lyquid, pos, kind: SideEffectKind::Event };
    /// let outputs = BTreeMap::from([(key, EventOutputs(vec!["minted".into()]))]);
    /// effects.write_outputs(&outputs)?;
    /// effects.write_outputs(&outputs)?; // a replay writing the same is accepted
    /// let diverged = BTreeMap::from([(key, EventOutputs(vec!["burned".into()]))]);
    /// let conflict = SideEffectError::ConflictingReplay { key };
    /// assert_eq!(effects.write_outputs(&diverged), Err(conflict));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn write_outputs(
        &self,
        outputs: &BTreeMap<SideEffectKey, EventOutputs>,
    ) -> Result<(), SideEffectError>;

    /// The outputs of `key`, or `None` when never written.
    ///
    /// ```
    /// # use store_api::*; use std::collections::BTreeMap;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let effects = backend.side_effects();
    /// let (lyquid, pos) = (LyquidId([1; 20]), ChainPos::new(7, 0));
    /// let key = SideEffectKey { lyquid, pos, kind: SideEffectKind::Timer };
    /// assert_eq!(effects.read_outputs(&key)?, None); // never written
    /// let outputs = EventOutputs(vec!["a".into(), "b".into()]);
    /// effects.write_outputs(&BTreeMap::from([(key, outputs.clone())]))?;
    /// assert_eq!(effects.read_outputs(&key)?, Some(outputs));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn read_outputs(&self, key: &SideEffectKey) -> Result<Option<EventOutputs>, SideEffectError>;

    /// Stores the output of an inter-call. The same output again is accepted; a different
    /// one fails with [`SideEffectError::ConflictingCallOutputReplay`]; a payload over
    /// [`MAX_VALUE_LEN`](crate::MAX_VALUE_LEN) is [`InputError::ValueTooLarge`].
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let effects = backend.side_effects();
    /// let (callee, pos) = (LyquidId([2; 20]), ChainPos::new(7, 0));
    /// let key = InterCallOutputKey { callee, pos, inter_call_seq: 0 };
    /// effects.upsert_inter_call_output(&key, &Some("42".into()))?;
    /// effects.upsert_inter_call_output(&key, &Some("42".into()))?; // the same output: accepted
    /// let conflict = effects.upsert_inter_call_output(&key, &None);
    /// assert_eq!(conflict, Err(SideEffectError::ConflictingCallOutputReplay { key }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn upsert_inter_call_output(
        &self,
        key: &InterCallOutputKey,
        output: &CallEventOutput,
    ) -> Result<(), SideEffectError>;

    /// `None` when never written, `Some(None)` when completed without payload,
    /// `Some(Some(bytes))` otherwise.
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let effects = backend.side_effects();
    /// let (callee, pos) = (LyquidId([2; 20]), ChainPos::new(7, 0));
    /// let key = |inter_call_seq| InterCallOutputKey { callee, pos, inter_call_seq };
    /// effects.upsert_inter_call_output(&key(0), &None)?;
    /// effects.upsert_inter_call_output(&key(1), &Some("42".into()))?;
    /// assert_eq!(effects.read_inter_call_output(&key(0))?, Some(None)); // completed, no payload
    /// assert_eq!(effects.read_inter_call_output(&key(1))?, Some(Some("42".into())));
    /// assert_eq!(effects.read_inter_call_output(&key(2))?, None); // never written
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn read_inter_call_output(
        &self,
        key: &InterCallOutputKey,
    ) -> Result<Option<CallEventOutput>, SideEffectError>;

    /// Adds inbound calls to their callees' queues, atomically and idempotently.
    ///
    /// Every record is validated first ([`InboundInterCall::check`]); the same record again
    /// is accepted, a different record at the same `(callee, order_key)` (in the store or
    /// earlier in `records`) is [`SideEffectError::ConflictingInboundCall`]. On any error
    /// nothing of the call is written.
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let effects = backend.side_effects();
    /// let (alice, bob) = (LyquidId([1; 20]), LyquidId([2; 20]));
    /// let call = InboundInterCall {
    ///     callee: bob,
    ///     order_key: CallOrderKey { pos: ChainPos::new(8, 0), seq: 0 },
    ///     call: InterCall { caller: alice, pos: ChainPos::new(7, 3), payload: "ping".into() },
    /// };
    /// effects.append_inbound_inter_calls(&[call.clone()])?;
    /// effects.append_inbound_inter_calls(&[call.clone()])?; // the same record again: accepted
    /// assert_eq!(effects.read_inbound_inter_calls(&bob, None, None, 10)?, vec![call]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn append_inbound_inter_calls(
        &self,
        records: &[InboundInterCall],
    ) -> Result<(), SideEffectError>;

    /// The inbound calls of `callee` with `from_exclusive < order_key` (from the first when
    /// `None`) and `call.pos < until_exclusive` (every call when `None`, including one made
    /// at `ChainPos(u128::MAX)`), ascending by order key, at most `limit`. Calls made at or
    /// after `until_exclusive` are skipped, not a stop: later order keys are still read.
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let effects = backend.side_effects();
    /// let (alice, bob) = (LyquidId([1; 20]), LyquidId([2; 20]));
    /// let call = |delivered: u64, made: u64| InboundInterCall {
    ///     callee: bob,
    ///     order_key: CallOrderKey { pos: ChainPos::new(delivered, 0), seq: 0 },
    ///     call: InterCall { caller: alice, pos: ChainPos::new(made, 0), payload: "ping".into() },
    /// };
    /// effects.append_inbound_inter_calls(&[call(8, 7), call(9, 9), call(10, 5)])?;
    /// assert_eq!(effects.read_inbound_inter_calls(&bob, None, None, 10)?.len(), 3);
    /// let first = CallOrderKey { pos: ChainPos::new(8, 0), seq: 0 };
    /// // After the first, made before block 9: the call made at block 9 is skipped, not a stop.
    /// let until = ChainPos::new(9, 0);
    /// let rest = effects.read_inbound_inter_calls(&bob, Some(&first), Some(until), 10)?;
    /// assert_eq!(rest, vec![call(10, 5)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn read_inbound_inter_calls(
        &self,
        callee: &LyquidId,
        from_exclusive: Option<&CallOrderKey>,
        until_exclusive: Option<ChainPos>,
        limit: usize,
    ) -> Result<Vec<InboundInterCall>, SideEffectError>;

    /// One page of the keys of the stored output slots (written by
    /// [`write_outputs`](Self::write_outputs), an empty slot included): ascending by
    /// [`SideEffectKey`]'s `Ord` (lyquid id bytes, then position, then kind in the order
    /// `Event`, `Call`, `Timer`), which is the byte order of the stored key encoding;
    /// strictly after `after` (from the first key when `None`; the cursor need not be
    /// stored), at most `limit` (0 gives nothing). Read each slot with
    /// [`read_outputs`](Self::read_outputs).
    ///
    /// ```
    /// # use store_api::*; use std::collections::BTreeMap;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let effects = backend.side_effects();
    /// let (lyquid, kind) = (LyquidId([1; 20]), SideEffectKind::Event);
    /// let slot = |block| SideEffectKey { lyquid, pos: ChainPos::new(block, 0), kind };
    /// let empty = EventOutputs::default(); // an empty slot is still a stored slot
    /// effects.write_outputs(&BTreeMap::from([(slot(2), empty.clone()), (slot(1), empty)]))?;
    /// assert_eq!(effects.list_output_keys(None, 10)?, vec![slot(1), slot(2)]);
    /// assert_eq!(effects.list_output_keys(Some(&slot(1)), 10)?, vec![slot(2)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn list_output_keys(
        &self,
        after: Option<&SideEffectKey>,
        limit: usize,
    ) -> Result<Vec<SideEffectKey>, SideEffectError>;

    /// One page of the keys of the stored inter-call outputs (a call completed without
    /// payload included): ascending by [`InterCallOutputKey`]'s `Ord` (callee id bytes,
    /// then position, then `inter_call_seq`), which is the byte order of the stored key
    /// encoding; strictly after `after` (from the first key when `None`; the cursor need
    /// not be stored), at most `limit` (0 gives nothing). Read each output with
    /// [`read_inter_call_output`](Self::read_inter_call_output).
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let effects = backend.side_effects();
    /// let (callee, pos) = (LyquidId([2; 20]), ChainPos::new(7, 0));
    /// let key = |inter_call_seq| InterCallOutputKey { callee, pos, inter_call_seq };
    /// effects.upsert_inter_call_output(&key(1), &None)?;
    /// effects.upsert_inter_call_output(&key(0), &Some("42".into()))?;
    /// assert_eq!(effects.list_inter_call_output_keys(None, 10)?, vec![key(0), key(1)]);
    /// assert_eq!(effects.list_inter_call_output_keys(Some(&key(0)), 1)?, vec![key(1)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn list_inter_call_output_keys(
        &self,
        after: Option<&InterCallOutputKey>,
        limit: usize,
    ) -> Result<Vec<InterCallOutputKey>, SideEffectError>;

    /// One page of the callees that have at least one inbound call, each once: ascending by
    /// [`LyquidId`]'s `Ord` (the byte order of the 20 id bytes), strictly after `after`
    /// (from the first callee when `None`; the cursor need not have calls), at most `limit`
    /// (0 gives nothing). Read each callee's queue with
    /// [`read_inbound_inter_calls`](Self::read_inbound_inter_calls).
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let effects = backend.side_effects();
    /// let alice = LyquidId([1; 20]);
    /// let call_to = |callee| InboundInterCall {
    ///     callee,
    ///     order_key: CallOrderKey { pos: ChainPos::new(8, 0), seq: 0 },
    ///     call: InterCall { caller: alice, pos: ChainPos::new(7, 0), payload: "ping".into() },
    /// };
    /// let (bob, carol) = (LyquidId([2; 20]), LyquidId([3; 20]));
    /// effects.append_inbound_inter_calls(&[call_to(carol), call_to(bob)])?;
    /// assert_eq!(effects.list_inbound_callees(None, 10)?, vec![bob, carol]);
    /// assert_eq!(effects.list_inbound_callees(Some(&bob), 10)?, vec![carol]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn list_inbound_callees(
        &self,
        after: Option<&LyquidId>,
        limit: usize,
    ) -> Result<Vec<LyquidId>, SideEffectError>;
}

/// A shared side-effect store is a side-effect store: every call goes to the one it points
/// to, so code generic over `S: SideEffectStore` also takes an `Arc<dyn SideEffectStore>`.
impl<S: SideEffectStore + ?Sized> SideEffectStore for std::sync::Arc<S> {
    fn write_outputs(
        &self,
        outputs: &BTreeMap<SideEffectKey, EventOutputs>,
    ) -> Result<(), SideEffectError> {
        (**self).write_outputs(outputs)
    }

    fn read_outputs(&self, key: &SideEffectKey) -> Result<Option<EventOutputs>, SideEffectError> {
        (**self).read_outputs(key)
    }

    fn upsert_inter_call_output(
        &self,
        key: &InterCallOutputKey,
        output: &CallEventOutput,
    ) -> Result<(), SideEffectError> {
        (**self).upsert_inter_call_output(key, output)
    }

    fn read_inter_call_output(
        &self,
        key: &InterCallOutputKey,
    ) -> Result<Option<CallEventOutput>, SideEffectError> {
        (**self).read_inter_call_output(key)
    }

    fn append_inbound_inter_calls(
        &self,
        records: &[InboundInterCall],
    ) -> Result<(), SideEffectError> {
        (**self).append_inbound_inter_calls(records)
    }

    fn read_inbound_inter_calls(
        &self,
        callee: &LyquidId,
        from_exclusive: Option<&CallOrderKey>,
        until_exclusive: Option<ChainPos>,
        limit: usize,
    ) -> Result<Vec<InboundInterCall>, SideEffectError> {
        (**self).read_inbound_inter_calls(callee, from_exclusive, until_exclusive, limit)
    }

    fn list_output_keys(
        &self,
        after: Option<&SideEffectKey>,
        limit: usize,
    ) -> Result<Vec<SideEffectKey>, SideEffectError> {
        (**self).list_output_keys(after, limit)
    }

    fn list_inter_call_output_keys(
        &self,
        after: Option<&InterCallOutputKey>,
        limit: usize,
    ) -> Result<Vec<InterCallOutputKey>, SideEffectError> {
        (**self).list_inter_call_output_keys(after, limit)
    }

    fn list_inbound_callees(
        &self,
        after: Option<&LyquidId>,
        limit: usize,
    ) -> Result<Vec<LyquidId>, SideEffectError> {
        (**self).list_inbound_callees(after, limit)
    }
}
