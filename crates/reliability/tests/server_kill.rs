//! Server kills: a PostgreSQL server of this test's own, stopped with
//! `pg_ctl stop -m immediate` and its postmaster killed with `SIGKILL`, alternately
//! (`RELIABILITY_SCALE × 4` outages), while six threads of one backend write every store;
//! restarted after each. See `reliability::server_kill`.

// Test code: a failed check is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use reliability::rng::run_seed;
use reliability::scale::scaled_usize;
use reliability::server_kill;

const OUTAGES: usize = 4;

#[test]
fn acknowledged_writes_survive_server_stops_and_kills_and_the_backend_works_again() {
    let seed = run_seed();
    let started = Instant::now();
    match server_kill::run(scaled_usize(OUTAGES), seed) {
        Ok(r) => {
            let [engine, ledger, segments, state] = r.acknowledged;
            let kills = r
                .outages
                .iter()
                .filter(|o| **o == server_kill::Outage::PostmasterKill)
                .count();
            eprintln!(
                "RELIABILITY-FIGURES server-kill outages={} immediate_stops={} \
                 postmaster_kills={kills} acknowledged_engine={engine} \
                 acknowledged_sales={ledger} acknowledged_appends={segments} \
                 acknowledged_flushes={state} unavailable_errors={} longest_call_ms={:.0} \
                 longest_restart_ms={:.0} longest_recovery_ms={:.0} seconds={:.1} seed={seed}",
                r.outages.len(),
                r.outages.len() - kills,
                r.unavailable,
                r.longest_call.as_secs_f64() * 1000.0,
                r.longest_restart.as_secs_f64() * 1000.0,
                r.longest_recovery.as_secs_f64() * 1000.0,
                started.elapsed().as_secs_f64()
            );
        }
        Err(failure) => panic!("seed {seed}: {failure}"),
    }
}
