//! Commit notifications of the engine, across every instance and process on one store
//! (`docs/contract.md` §3.7, §9.3): what wakes `wait_for_sequence`.
//!
//! Every engine batch sends a PostgreSQL notification from inside its own transaction
//! (`pg_notify` on the store's [`CommitChannel`], payload `"<schema> <seq>"`). The server
//! delivers it to every connection that listens on the channel once, and only if, the
//! transaction commits, after the batch is visible to new snapshots; a rolled-back batch
//! notifies nobody. A waiter listens on a connection of its own (not the pool's: a wait
//! may last long), reads the counter once it listens, and then sleeps on that connection's
//! socket until a notification names a later batch or its deadline passes: it never polls.
//!
//! Between waits a connection stops listening ([`Listeners`] keeps a few, unlistened, for
//! the next waiter): a connection that listens while nobody reads it would hold back the
//! server's notification queue, which is shared by the whole server.

use std::time::Instant;

use parking_lot::Mutex;
use postgres::Notification;
use postgres::fallible_iterator::FallibleIterator;
use store_api::{StorageError, StorageErrorKind};

use crate::db::{Db, PgConn};
use crate::engine::read_sequence;
use crate::{BACKEND_NAME, PgContext};

/// How many unlistened connections a store keeps open between waits, for the next waiters.
const IDLE_LISTENERS: usize = 2;

/// The notification channel of one store's engine commits, and the payload prefix that
/// names the store.
///
/// The channel is `store_postgres_commits_` and a 64-bit FNV-1a hash of the schema name in
/// hex (a channel name has at most 63 bytes, as much as a schema name alone). The payload
/// names the schema again, so two schemas whose hashes collide never take each other's
/// notifications for their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommitChannel {
    name: String,
    payload_prefix: String,
}

/// FNV-1a, 64 bits: a hash every build and platform computes alike, so every instance of a
/// store, whatever its version, names the same channel.
fn fnv1a_64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl CommitChannel {
    /// The channel of the store kept in `schema`.
    pub(crate) fn of_schema(schema: &str) -> Self {
        CommitChannel {
            name: format!(
                "store_postgres_commits_{:016x}",
                fnv1a_64(schema.as_bytes())
            ),
            payload_prefix: format!("{schema} "),
        }
    }

    /// The channel's name, as `pg_notify` takes it (lowercase letters, digits and `_`:
    /// the same quoted or not).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// What a notification's payload starts with, followed by the batch's number.
    pub(crate) fn payload_prefix(&self) -> &str {
        &self.payload_prefix
    }

    /// The batch number `notification` announces for this store; `None` for another
    /// channel or another store's payload.
    fn seq_of(&self, notification: &Notification) -> Option<u64> {
        self.seq_in(notification.channel(), notification.payload())
    }

    /// The batch number a notification on `channel` with `payload` announces for this
    /// store.
    fn seq_in(&self, channel: &str, payload: &str) -> Option<u64> {
        if channel != self.name {
            return None;
        }
        payload
            .strip_prefix(self.payload_prefix.as_str())?
            .parse()
            .ok()
    }
}

/// Where waiters get their listening connections: a few connections kept between waits
/// (not listening meanwhile), a new one when none is idle.
pub(crate) struct Listeners {
    channel: CommitChannel,
    idle: Mutex<Vec<PgConn>>,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listeners")
            .field("channel", &self.channel.name)
            .field("idle", &self.idle.lock().len())
            .finish()
    }
}

impl Listeners {
    /// No connection yet: the first waiter opens one.
    pub(crate) fn new(channel: CommitChannel) -> Self {
        Listeners {
            channel,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Drops the idle listening connections (the backend closed).
    pub(crate) fn close(&self) {
        self.idle.lock().clear();
    }

    /// The channel every batch of this store notifies.
    pub(crate) fn channel(&self) -> &CommitChannel {
        &self.channel
    }

    /// Waits until a batch numbered above `after` has committed, through any instance, or
    /// `deadline` has passed (`None`: no deadline); returns the number then current (above
    /// `after` unless the wait timed out).
    ///
    /// Fails with [`StorageErrorKind::Unavailable`] when no connection can be had, or when
    /// the waiting connection breaks (the server stopped): a notification may have been
    /// missed, so the caller, not this wait, decides whether to wait again.
    pub(crate) fn wait(
        &self,
        db: &Db,
        after: u64,
        deadline: Option<Instant>,
    ) -> Result<u64, StorageError> {
        let mut client = self.listening(db)?;
        let outcome = self.wait_on(db, &mut client, after, deadline);
        if outcome.is_ok() {
            self.put_back(client);
        }
        outcome
    }

    /// A connection listening on the channel: an idle one when it still works, else a new
    /// one.
    fn listening(&self, db: &Db) -> Result<PgConn, StorageError> {
        let idle = self.idle.lock().pop();
        if let Some(mut client) = idle
            && self.listen(&mut client).is_ok()
        {
            return Ok(client);
        }
        let mut client = db.dedicated()?;
        self.listen(&mut client)?;
        Ok(client)
    }

    fn listen(&self, client: &mut PgConn) -> Result<(), StorageError> {
        client
            .batch_execute(&format!("LISTEN \"{}\"", self.channel.name))
            .ctx("listening for engine commits")
    }

    /// Stops `client` listening and keeps it for the next waiter, when there is room and
    /// it still works.
    fn put_back(&self, mut client: PgConn) {
        if client
            .batch_execute(&format!("UNLISTEN \"{}\"", self.channel.name))
            .is_err()
        {
            return;
        }
        // Every notification the server sent before the UNLISTEN arrived before its answer
        // and is buffered: stale for the next waiter, so dropped now.
        {
            let mut notifications = client.notifications();
            let mut buffered = notifications.iter();
            while let Ok(Some(_)) = buffered.next() {}
        }
        let mut idle = self.idle.lock();
        if idle.len() < IDLE_LISTENERS {
            idle.push(client);
        }
    }

    fn wait_on(
        &self,
        db: &Db,
        client: &mut PgConn,
        after: u64,
        deadline: Option<Instant>,
    ) -> Result<u64, StorageError> {
        const CTX: &str = "waiting for an engine commit";
        // The connection listens: a batch that commits from now on notifies it, and one
        // that committed before is counted here.
        let current = read_sequence(client)?;
        if current > after {
            return Ok(current);
        }
        loop {
            let next = match deadline {
                None => client.notifications().blocking_iter().next(),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    client.notifications().timeout_iter(left).next()
                }
            }
            .ctx(CTX)?;
            // A close of this instance wakes its waiters with a notification of its own.
            db.gate().check_open()?;
            match next {
                Some(notification) => {
                    if let Some(seq) = self.channel.seq_of(&notification)
                        && seq > after
                    {
                        return Ok(seq);
                    }
                }
                None if client.is_closed() => {
                    return Err(StorageError::without_source(
                        BACKEND_NAME,
                        StorageErrorKind::Unavailable,
                        "the connection waiting for engine commits closed",
                    ));
                }
                None => {}
            }
        }
        // The deadline passed: the number current now.
        read_sequence(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_fit_postgres_identifiers_and_differ_per_schema() {
        let longest = "s".repeat(63);
        for schema in ["store", "orders", "a", longest.as_str()] {
            let channel = CommitChannel::of_schema(schema);
            assert!(channel.name().len() <= 63, "{}", channel.name());
            assert!(
                channel
                    .name()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                channel.name()
            );
            assert_eq!(channel, CommitChannel::of_schema(schema));
        }
        assert_ne!(
            CommitChannel::of_schema("orders").name(),
            CommitChannel::of_schema("orders2").name()
        );
    }

    #[test]
    fn only_this_stores_payloads_name_a_batch() {
        let orders = CommitChannel::of_schema("orders");
        let name = orders.name().to_owned();
        assert_eq!(orders.seq_in(&name, "orders 17"), Some(17));
        assert_eq!(orders.seq_in(&name, "orders2 17"), None);
        assert_eq!(orders.seq_in(&name, "order 17"), None);
        assert_eq!(orders.seq_in(&name, "orders x"), None);
        assert_eq!(orders.seq_in(&name, "orders -1"), None);
        assert_eq!(orders.seq_in("elsewhere", "orders 17"), None);
    }

    #[test]
    fn fnv1a_matches_its_reference_values() {
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
