//! The command line, parsed by clap.

use clap::{Parser, ValueEnum};
use swapstore::migrate::{Options, Plan, StoreKind};
use swapstore::replicate::FollowOptions;
use swapstore::{BackendConfig, Book, InputError, LyquidId, SessionId};

const EXAMPLES: &str = "\
Examples:
  # Copy everything from sled into a new redb directory, then verify it
  store-migrate sled:/var/lib/app redb:/var/lib/app-redb

  # What would be copied, with counts; nothing is written to the destination or created
  store-migrate --dry-run sled:/var/lib/app redb:/var/lib/app-redb

  # Only the ledger, and only its books shop and refunds (plus _system, the assets)
  store-migrate sled:/var/lib/app redb:/var/lib/app-redb --store ledger --book shop --book refunds

  # Compare an earlier copy with its source again, as JSON
  store-migrate --verify-only --json sled:/var/lib/app redb:/var/lib/app-redb

  # Follow a PostgreSQL leader into a local redb follower until Ctrl-C (run it again to
  # resume: nothing is copied twice)
  store-migrate --follow 'postgres://app@db/app?schema=orders' 'redb:/var/lib/follower?durability=relaxed'

  # Bring a follower up to date with a leader nobody writes now, then exit
  store-migrate --follow --catch-up sled:/var/lib/app redb:/var/lib/app-redb

Exit codes:
  0  copied and verified (--dry-run: the migration would run)
  1  verification failed: the report lists each store's differences
  2  bad arguments, including a --partition, --book, --session or --lyquid the source lacks
  3  source or destination error: a missing source, a destination that is not empty or
     holds an unfinished migration, a failed read or write
  4  --follow: the follower cannot go on from what it holds (the leader pruned batches it
     still needs, the two diverged, or its first copy never finished): remove the
     follower's store and follow again

The source:
  store-migrate never creates its source, and opens it read-only wherever its backend can,
  so its files are left as they were. sled and fjall cannot open a store read-only, so
  their sources are opened read-write; a redb source left by a crash needs recovery, which only a
  read-write open runs, so it is opened read-write to recover it. The report (and --dry-run)
  says in one sentence how the source was opened.

Interrupted copies:
  Before copying, store-migrate writes a MIGRATING file into the destination directory and
  removes it only once verification has passed. A destination that still has it was
  interrupted (Ctrl-C, a kill, a full disk) or did not match: later runs refuse it and
  --verify-only reports it unfinished. Remove that directory and run store-migrate again.

Following (--follow FROM TO):
  A new follower receives a copy of every store once (marked with MIGRATING until it is
  complete); then, and on every later run, it applies the leader's engine batches under
  the leader's numbers as they commit, resuming after the follower's last batch. Only the
  engine is followed: the other stores hold what the first copy found. It stops cleanly on
  Ctrl-C or SIGTERM and exits 0 (during the first copy: once the copy is complete; a
  second signal exits at once, 130, and an interrupted first copy stays marked); with
  --catch-up it exits once it has every batch the leader has. A progress line (batches behind, rate)
  shows on a terminal; otherwise log lines go to stderr.
  The leader is opened by this process, so it must not be locked by another: an embedded
  leader (redb, lmdb, sled, fjall, sqlite) allows one process per directory, so a live one can
  only be followed from inside its own process (the swapstore::replicate API); from another
  process, follow a shared leader (postgres://), or an embedded one nobody has open.
  Durability ?durability=relaxed is safe on a follower: batches a crash takes back are
  fetched again.";

/// Copies every store of one backend into another, then verifies the copy store by store.
///
/// Everything every store lists is copied: the engine (data, batch log and sequence
/// numbers), every state partition, every ledger book, every session and segment, every
/// side-effect slot, inter-call output and inbound call. The destination is written
/// without an fsync per write and made durable once at the end, then closed, reopened and
/// compared with the source (counts and a digest per store). Progress goes to stderr, the
/// report to stdout.
///
/// With --follow, TO keeps following FROM: after the first copy it applies FROM's engine
/// batches as they commit (see "Following" in --help).
#[derive(Debug, Parser)]
#[command(name = "store-migrate", version, after_long_help = EXAMPLES)]
pub struct Cli {
    /// The source URL; it must already hold a database (it is never created, and is
    /// opened read-only where the backend can): redb:DIR, lmdb:DIR, sled:DIR, fjall:DIR, sqlite:DIR or
    /// mem:
    #[arg(value_name = "FROM")]
    pub from: BackendConfig,

    /// The destination URL: a directory that does not exist yet, an empty one, or an empty
    /// database; options ?durability=relaxed&cache=N as for any URL
    #[arg(value_name = "TO")]
    pub to: BackendConfig,

    /// Copy only this store (repeatable, or comma-separated); default: all five
    #[arg(
        long = "store",
        value_name = "STORE",
        value_enum,
        value_delimiter = ','
    )]
    pub stores: Vec<StoreArg>,

    /// Copy only this state partition (repeatable); default: every partition
    #[arg(long = "partition", value_name = "NAME", value_parser = partition)]
    pub partitions: Vec<String>,

    /// Copy only this ledger book, besides _system (repeatable); default: every book
    #[arg(long = "book", value_name = "NAME", value_parser = book)]
    pub books: Vec<Book>,

    /// Copy only this segment-log session (repeatable, a UUID); default: every session
    #[arg(long = "session", value_name = "ID")]
    pub sessions: Vec<SessionId>,

    /// Copy only this Lyquid's side effects: its output slots, inter-call outputs and
    /// inbound calls (repeatable, 40 hex digits); default: all
    #[arg(long = "lyquid", alias = "callee", value_name = "HEX")]
    pub lyquids: Vec<LyquidId>,

    /// Accept a destination that already holds data, as long as every store to copy is
    /// still empty there (nothing is merged or overwritten)
    #[arg(long)]
    pub into_existing: bool,

    /// Say what would be copied, with counts, and write nothing
    #[arg(long, conflicts_with = "verify_only")]
    pub dry_run: bool,

    /// Only compare an existing destination with the source, and write nothing
    #[arg(long)]
    pub verify_only: bool,

    /// Print the report (or the error) as one JSON object on stdout
    #[arg(long)]
    pub json: bool,

    /// Keep TO following FROM: copy everything once if TO is new, then apply FROM's engine
    /// batches as they commit, until Ctrl-C or SIGTERM (see "Following" below)
    #[arg(
        long,
        conflicts_with_all = ["dry_run", "verify_only", "into_existing", "stores", "partitions", "books", "sessions", "lyquids"]
    )]
    pub follow: bool,

    /// With --follow: exit once the follower has every batch the leader has
    #[arg(long, requires = "follow")]
    pub catch_up: bool,

    /// Log more on stderr: -v each backend opened and each store copied (counts, seconds),
    /// -vv also each batch of batches a follower applies, -vvv everything. Without it only
    /// warnings are logged (and, with --follow when stderr is not a terminal, its progress)
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// A store, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreArg {
    /// The engine: data, batch log, sequence numbers
    Engine,
    /// The state partitions
    State,
    /// The ledger
    Ledger,
    /// The segment log
    Segments,
    /// The side-effect store
    SideEffects,
}

impl From<StoreArg> for StoreKind {
    fn from(store: StoreArg) -> Self {
        match store {
            StoreArg::Engine => StoreKind::Engine,
            StoreArg::State => StoreKind::State,
            StoreArg::Ledger => StoreKind::Ledger,
            StoreArg::Segments => StoreKind::Segments,
            StoreArg::SideEffects => StoreKind::SideEffects,
        }
    }
}

fn partition(name: &str) -> Result<String, InputError> {
    swapstore::limits::check_partition_name(name).map(|()| name.to_owned())
}

fn book(name: &str) -> Result<Book, InputError> {
    Book::new(name)
}

/// `items` without repeats, in their first order.
fn unique<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

impl Cli {
    /// What to copy.
    pub fn plan(&self) -> Plan {
        Plan {
            stores: unique(self.stores.iter().map(|s| StoreKind::from(*s)).collect()),
            partitions: unique(self.partitions.clone()),
            books: unique(self.books.clone()),
            sessions: unique(self.sessions.clone()),
            callees: unique(self.lyquids.clone()),
        }
    }

    /// How to follow, with `--follow`.
    pub fn follow_options(&self) -> FollowOptions {
        FollowOptions {
            until_caught_up: self.catch_up,
            ..FollowOptions::default()
        }
    }

    /// How to treat the destination.
    pub fn options(&self) -> Options {
        Options {
            into_existing: self.into_existing,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn repeated_and_comma_separated_options_make_one_plan() {
        let cli = Cli::try_parse_from([
            "store-migrate",
            "sled:/a",
            "redb:/b?durability=relaxed",
            "--store=ledger,state",
            "--store",
            "ledger",
            "--partition",
            "p1",
            "--partition=p1",
            "--book=shop",
            "--callee",
            "0x0102030405060708090a0b0c0d0e0f1011121314",
        ])
        .unwrap();
        assert_eq!(cli.from.to_string(), "sled:/a");
        assert_eq!(cli.to.to_string(), "redb:/b?durability=relaxed");
        let plan = cli.plan();
        assert_eq!(plan.stores, [StoreKind::Ledger, StoreKind::State]);
        assert_eq!(plan.partitions, ["p1"]);
        assert_eq!(plan.books, [Book::new("shop").unwrap()]);
        assert_eq!(plan.callees.len(), 1);
        assert!(!cli.options().into_existing);
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for bad in [
            &["store-migrate", "mem:"][..],
            &["store-migrate", "mem:", "rocks:/x"],
            &["store-migrate", "mem:", "mem:", "--partition", "../x"],
            &["store-migrate", "mem:", "mem:", "--book", ""],
            &["store-migrate", "mem:", "mem:", "--lyquid", "zz"],
            &["store-migrate", "mem:", "mem:", "--session", "nope"],
            &["store-migrate", "mem:", "mem:", "--store", "cache"],
            &[
                "store-migrate",
                "mem:",
                "mem:",
                "--dry-run",
                "--verify-only",
            ],
            &["store-migrate", "mem:", "mem:", "--follow", "--dry-run"],
            &[
                "store-migrate",
                "mem:",
                "mem:",
                "--follow",
                "--store",
                "engine",
            ],
            &["store-migrate", "mem:", "mem:", "--catch-up"],
        ] {
            let err = Cli::try_parse_from(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
    }
}
