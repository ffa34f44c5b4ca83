//! State migration: the partitions the plan names, copied through portable snapshots.

use store_api::{StateError, StateSnapshot};

use super::{Difference, MigrateError, Plan, StoreKind, record};
use crate::migrate::report::CopySummary;
use crate::stores::Stores;

fn in_partition(partition: &str) -> impl FnOnce(StateError) -> MigrateError + '_ {
    move |source| MigrateError::State {
        partition: partition.to_owned(),
        source,
    }
}

fn snapshot(stores: &Stores, partition: &str) -> Result<StateSnapshot, MigrateError> {
    stores
        .state_store(partition)
        .and_then(|state| state.snapshot())
        .map_err(in_partition(partition))
}

pub(super) fn check_empty(to: &Stores, plan: &Plan) -> Result<(), MigrateError> {
    for partition in &plan.partitions {
        let len = to
            .state_store(partition)
            .map(|state| state.len())
            .map_err(in_partition(partition))?;
        if len != 0 {
            return Err(MigrateError::DestinationNotEmpty {
                store: StoreKind::State,
                detail: format!("partition {partition:?} holds {len} keys"),
            });
        }
    }
    Ok(())
}

pub(super) fn copy(from: &Stores, to: &Stores, plan: &Plan) -> Result<CopySummary, MigrateError> {
    let mut keys = 0;
    for partition in &plan.partitions {
        let snapshot = snapshot(from, partition)?;
        keys += snapshot.len();
        let mut state = to.state_store(partition).map_err(in_partition(partition))?;
        state
            .restore(&snapshot)
            .and_then(|()| state.flush())
            .map_err(in_partition(partition))?;
    }
    Ok(CopySummary {
        store: StoreKind::State,
        copied: format!(
            "named partitions {}, keys {keys}, copied through portable snapshots",
            plan.partitions.len()
        ),
        not_migrated: vec![
            "partitions not named with --partition: the Backend trait cannot list partitions, \
             so they can be neither copied nor detected"
                .to_owned(),
        ],
    })
}

pub(super) fn verify(
    from: &Stores,
    to: &Stores,
    plan: &Plan,
    differences: &mut Vec<Difference>,
) -> Result<(), MigrateError> {
    for partition in &plan.partitions {
        let (a, b) = (snapshot(from, partition)?, snapshot(to, partition)?);
        if a == b {
            continue;
        }
        let first_difference = a
            .entries()
            .iter()
            .zip(b.entries())
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        let at = a
            .entries()
            .get(first_difference)
            .or_else(|| b.entries().get(first_difference))
            .map(|(key, _)| format!("{key:?}"))
            .unwrap_or_default();
        let detail = format!(
            "partition {partition:?}: source {} keys, destination {} keys, first difference at key {at}",
            a.len(),
            b.len()
        );
        if !record(differences, StoreKind::State, detail) {
            return Ok(());
        }
    }
    Ok(())
}
