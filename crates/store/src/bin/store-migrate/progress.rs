//! Progress on stderr: a bar per store and phase on a terminal (items and rate), plain
//! lines otherwise (at the start, every few seconds, and at the end of each). A follower's
//! status (its batch, the batches behind, the rate) is a line redrawn in place on a
//! terminal; otherwise its `tracing` events are the log.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use swapstore::migrate::{Phase, Progress, StoreKind};
use swapstore::replicate::{FollowProgress, FollowStatus};

/// How often a plain progress line is printed while a store is being handled.
const LINE_EVERY: Duration = Duration::from_secs(5);

/// Progress for a terminal or for a log.
pub enum Reporter {
    /// Bars redrawn in place.
    Bars(RefCell<Option<ProgressBar>>),
    /// Plain lines.
    Lines(RefCell<Option<Line>>),
}

/// The store and phase a plain-line reporter is on.
pub struct Line {
    label: String,
    items: u64,
    started: Instant,
    printed: Instant,
}

impl Reporter {
    /// Bars when stderr is a terminal, plain lines otherwise.
    pub fn for_stderr() -> Self {
        if std::io::stderr().is_terminal() {
            Reporter::Bars(RefCell::new(None))
        } else {
            Reporter::Lines(RefCell::new(None))
        }
    }
}

impl Reporter {
    /// Removes the follower's status line, if one is drawn: the report that follows
    /// states where the follower ended.
    pub fn finish_following(&self) {
        if let Reporter::Bars(bar) = self
            && let Some(bar) = bar.borrow_mut().take()
        {
            bar.finish_and_clear();
        }
    }
}

impl FollowProgress for Reporter {
    fn status(&self, status: &FollowStatus) {
        let Reporter::Bars(bar) = self else {
            return;
        };
        let mut bar = bar.borrow_mut();
        let bar = bar.get_or_insert_with(|| {
            let new = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} following  {msg}  {elapsed}")
            {
                new.set_style(style);
            }
            new.enable_steady_tick(Duration::from_millis(120));
            new
        });
        bar.set_message(format!(
            "at batch {:>10}  {:>8} behind  {:>10.0} batches/s",
            status.applied,
            status.behind(),
            status.batches_per_second
        ));
    }
}

fn label(phase: Phase, store: StoreKind) -> String {
    format!("{} {store}", phase.verb())
}

fn rate(items: u64, elapsed: Duration) -> f64 {
    items as f64 / elapsed.as_secs_f64().max(1e-3)
}

impl Progress for Reporter {
    fn begin(&self, phase: Phase, store: StoreKind) {
        match self {
            Reporter::Bars(bar) => {
                let new = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                if let Ok(style) = ProgressStyle::with_template(
                    "{spinner} {prefix:<24} {human_pos:>12} items  {rate:>12}  {elapsed}",
                ) {
                    new.set_style(style.with_key(
                        "rate",
                        |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                            let _ = write!(out, "{:.0} items/s", state.per_sec());
                        },
                    ));
                }
                new.set_prefix(label(phase, store));
                new.enable_steady_tick(Duration::from_millis(120));
                *bar.borrow_mut() = Some(new);
            }
            Reporter::Lines(line) => {
                let now = Instant::now();
                let label = label(phase, store);
                eprintln!("store-migrate: {label}");
                *line.borrow_mut() = Some(Line {
                    label,
                    items: 0,
                    started: now,
                    printed: now,
                });
            }
        }
    }

    fn advance(&self, _phase: Phase, _store: StoreKind, items: u64) {
        match self {
            Reporter::Bars(bar) => {
                if let Some(bar) = bar.borrow().as_ref() {
                    bar.inc(items);
                }
            }
            Reporter::Lines(line) => {
                if let Some(line) = line.borrow_mut().as_mut() {
                    line.items += items;
                    if line.printed.elapsed() >= LINE_EVERY {
                        line.printed = Instant::now();
                        let per_second = rate(line.items, line.started.elapsed());
                        eprintln!(
                            "store-migrate: {}: {} items so far ({per_second:.0} items/s)",
                            line.label, line.items
                        );
                    }
                }
            }
        }
    }

    fn end(&self, _phase: Phase, _store: StoreKind) {
        match self {
            Reporter::Bars(bar) => {
                if let Some(bar) = bar.borrow_mut().take() {
                    bar.finish();
                }
            }
            Reporter::Lines(line) => {
                if let Some(line) = line.borrow_mut().take() {
                    let elapsed = line.started.elapsed();
                    eprintln!(
                        "store-migrate: {}: done, {} items in {:.1} s ({:.0} items/s)",
                        line.label,
                        line.items,
                        elapsed.as_secs_f64(),
                        rate(line.items, elapsed)
                    );
                }
            }
        }
    }
}
