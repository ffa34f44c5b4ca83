//! The follower of the follower-kill test (`tests/follower_kill.rs`,
//! `reliability::follow_kill`): what `store-migrate --follow` runs, with its progress on
//! standard output for the parent that kills it.
//!
//! ```text
//! follow_child <leader-url> <follower-url> [catch-up]
//! follow_child lead <leader-url> <follower-url>
//! ```
//!
//! The first form runs `store::replicate::follow` and prints, each line flushed: `copied
//! <n>` or `resumed <n>` once the follower's store is ready (after its first copy, or
//! resumed after batch `n`), `applied <seq>` after each batch `apply_batch` committed, and,
//! with `catch-up`, `caught-up <n>` when it has every batch the leader has (then it exits
//! 0). Without `catch-up` it follows until killed.
//!
//! `lead` is the leader's process, with its follower inside it (an embedded leader can be
//! followed only from its own process): it opens the leader, starts a
//! `store::replicate::Follower` on it (printing `copied <n>` or `resumed <n>`) tailing in
//! a thread, and writes [`reliability::follow_kill::leader_batch`]es on the leader
//! forever, printing `ack <seq>` after each commit returned, until killed.
//!
//! A follower that needs a resync exits 4, any other failure 2, its error on standard
//! error.

use std::io::Write;

use reliability::follow_kill::leader_batch;
use store::migrate::{NoProgress, Progress};
use store::replicate::{
    self, Ended, FollowError, FollowOptions, FollowProgress, Start, StopHandle,
};
use store::{BackendConfig, Stores};

/// Prints the follower's progress for the parent.
struct Lines;

impl Lines {
    fn line(&self, line: std::fmt::Arguments<'_>) {
        let mut out = std::io::stdout().lock();
        // The parent reading the lines may be gone (it killed us); nothing to do then.
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

impl Progress for Lines {}

impl FollowProgress for Lines {
    fn started(&self, start: &Start) {
        match start {
            Start::Copied { at, .. } => self.line(format_args!("copied {at}")),
            Start::Resumed { at } => self.line(format_args!("resumed {at}")),
        }
    }

    fn applied(&self, seq: u64) {
        self.line(format_args!("applied {seq}"));
    }
}

fn parse(url: Option<&String>, what: &str) -> Result<BackendConfig, String> {
    let url = url.ok_or_else(|| format!("missing {what} URL"))?;
    url.parse().map_err(|e| format!("{what} URL {url:?}: {e}"))
}

/// Why the leader's process stopped.
enum LeadError {
    Follow(FollowError),
    Other(String),
}

/// `lead`: the leader writes while its follower tails it in a thread, until killed.
fn lead(from: &BackendConfig, to: &BackendConfig) -> Result<(), LeadError> {
    let leader = Stores::open(from).map_err(|e| LeadError::Other(store::error_chain(&e)))?;
    let follower = replicate::Follower::start(&leader, to, &Lines).map_err(LeadError::Follow)?;
    let engine = leader.engine();
    let stop = StopHandle::new();
    std::thread::scope(|scope| {
        let tail = scope.spawn(|| {
            follower.run(
                engine.as_ref(),
                &FollowOptions::default(),
                &stop,
                &NoProgress,
            )
        });
        let mut i = engine.current_sequence();
        let written = loop {
            if tail.is_finished() {
                break Ok(());
            }
            match engine.write_batch(&leader_batch(i)) {
                Ok(seq) => Lines.line(format_args!("ack {seq}")),
                Err(e) => break Err(LeadError::Other(store::error_chain(&e))),
            }
            i += 1;
        };
        stop.stop();
        match tail.join() {
            Ok(Ok(outcome)) => written.and(Err(LeadError::Other(format!(
                "the follower stopped by itself: {outcome:?}"
            )))),
            Ok(Err(e)) => Err(LeadError::Follow(e)),
            Err(_) => Err(LeadError::Other("the follower panicked".to_owned())),
        }
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("lead") {
        let configs = parse(args.get(1), "leader")
            .and_then(|from| parse(args.get(2), "follower").map(|to| (from, to)));
        let code = match configs {
            Err(message) => {
                eprintln!("follow_child: {message}");
                2
            }
            Ok((from, to)) => match lead(&from, &to) {
                Ok(()) => 0,
                Err(LeadError::Follow(err)) => {
                    eprintln!("follow_child: {}", store::error_chain(&err));
                    if err.needs_resync() { 4 } else { 2 }
                }
                Err(LeadError::Other(message)) => {
                    eprintln!("follow_child: {message}");
                    2
                }
            },
        };
        std::process::exit(code);
    }
    let parsed = parse(args.first(), "leader").and_then(|from| {
        let to = parse(args.get(1), "follower")?;
        match args.get(2).map(String::as_str) {
            None => Ok((from, to, false)),
            Some("catch-up") => Ok((from, to, true)),
            Some(other) => Err(format!("unknown argument {other:?}")),
        }
    });
    let (from, to, catch_up) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("follow_child: {message}");
            std::process::exit(2);
        }
    };
    let options = FollowOptions {
        until_caught_up: catch_up,
        ..FollowOptions::default()
    };
    match replicate::follow(&from, &to, &options, &StopHandle::new(), &Lines) {
        Ok(report) if report.tail.ended == Ended::CaughtUp => {
            Lines.line(format_args!("caught-up {}", report.tail.at));
        }
        Ok(report) => {
            eprintln!("follow_child: stopped unasked: {report}");
            std::process::exit(2);
        }
        Err(err) => {
            eprintln!("follow_child: {}", store::error_chain(&err));
            std::process::exit(if err.needs_resync() { 4 } else { 2 });
        }
    }
}
