//! The stream-operator example: a word count kept in a state partition, checkpointed with
//! a snapshot, rolled back to it after a simulated failure, and restored from the portable
//! snapshot bytes into a second partition.

use std::fmt;

use swapstore::{StateSnapshot, StateStore, StateStoreExt};

use super::DemoError;
use swapstore::Stores;

/// The operator's partition.
pub const PARTITION: &str = "demo-word-count";
/// The partition the checkpoint bytes are restored into.
pub const REPLICA_PARTITION: &str = "demo-word-count-replica";

const KEY_PREFIX: &[u8] = b"word/";
const WINDOW_1: &str = "to be or not to be";
const WINDOW_2: &str = "that is the question to be";

/// What [`state_demo`] did and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDemo {
    /// Words counted in the checkpoint (after the first window).
    pub checkpoint_entries: usize,
    /// Size of the checkpoint in the portable snapshot format, in bytes.
    pub checkpoint_bytes: usize,
    /// Words the partition held when the simulated failure struck mid-window.
    pub entries_at_failure: usize,
    /// Whether restoring the checkpoint brought back exactly the checkpointed state.
    pub rollback_matches_checkpoint: bool,
    /// The final counts, ascending by word.
    pub counts: Vec<(String, u64)>,
    /// The counts of the replica partition restored from the checkpoint bytes.
    pub replica_counts: Vec<(String, u64)>,
}

impl fmt::Display for StateDemo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "checkpoint after window 1: {} words, {} bytes as a portable snapshot",
            self.checkpoint_entries, self.checkpoint_bytes
        )?;
        writeln!(
            f,
            "failure mid window 2 at {} words; rollback to the checkpoint exact: {}",
            self.entries_at_failure, self.rollback_matches_checkpoint
        )?;
        writeln!(f, "word counts after replaying window 2 ({PARTITION}):")?;
        for (word, count) in &self.counts {
            writeln!(f, "  {word:<10} {count}")?;
        }
        writeln!(
            f,
            "replica restored from the checkpoint bytes ({REPLICA_PARTITION}):"
        )?;
        for (word, count) in &self.replica_counts {
            writeln!(f, "  {word:<10} {count}")?;
        }
        Ok(())
    }
}

fn word_key(word: &str) -> Vec<u8> {
    [KEY_PREFIX, word.as_bytes()].concat()
}

fn count_words(state: &mut dyn StateStore, words: &[&str]) -> Result<(), DemoError> {
    for word in words {
        state.update::<u64, _>(&word_key(word), |n| Some(n.unwrap_or(0) + 1))?;
    }
    Ok(())
}

fn counts(state: &dyn StateStore) -> Result<Vec<(String, u64)>, DemoError> {
    let mut out = Vec::new();
    for (key, _) in state.prefix_scan(KEY_PREFIX)? {
        let word = String::from_utf8_lossy(&key[KEY_PREFIX.len()..]).into_owned();
        let count = state.get_typed::<u64>(&key)?.unwrap_or(0);
        out.push((word, count));
    }
    Ok(out)
}

/// Runs the stream-operator example on `stores`: counts the words of two windows in
/// [`PARTITION`] (emptied first, so every run reports the same), checkpoints after the
/// first, fails halfway through the second, rolls back to the checkpoint and replays the
/// window, then restores the checkpoint's bytes into [`REPLICA_PARTITION`]. Both
/// partitions are flushed.
pub fn state_demo(stores: &Stores) -> Result<StateDemo, DemoError> {
    let mut state = stores.state_store(PARTITION)?;
    state.clear()?;

    let window_1: Vec<&str> = WINDOW_1.split(' ').collect();
    count_words(state.as_mut(), &window_1)?;
    state.flush()?;
    let checkpoint = state.snapshot()?;
    let checkpoint_bytes = checkpoint.to_bytes();

    let window_2: Vec<&str> = WINDOW_2.split(' ').collect();
    let (first_half, _) = window_2.split_at(window_2.len() / 2);
    count_words(state.as_mut(), first_half)?;
    let entries_at_failure = state.len();
    state.restore(&checkpoint)?;
    let rollback_matches_checkpoint = state.snapshot()? == checkpoint;
    count_words(state.as_mut(), &window_2)?;
    state.flush()?;

    let mut replica = stores.state_store(REPLICA_PARTITION)?;
    replica.restore(&StateSnapshot::from_bytes(&checkpoint_bytes)?)?;
    replica.flush()?;

    Ok(StateDemo {
        checkpoint_entries: checkpoint.len(),
        checkpoint_bytes: checkpoint_bytes.len(),
        entries_at_failure,
        rollback_matches_checkpoint,
        counts: counts(state.as_ref())?,
        replica_counts: counts(replica.as_ref())?,
    })
}
