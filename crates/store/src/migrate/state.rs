//! State migration: every partition the source lists (or those the plan names), copied
//! one at a time through portable snapshots.

use std::fmt;

use serde::Serialize;
use store_api::Bytes;

use super::compare::Sink;
use super::error::MigrateError;
use super::progress::{Phase, Progress, Step};
use super::report::{CopySummary, Counts, StoreKind};
use super::{Plan, paged};
use crate::stores::Stores;

/// Partitions named in an error's hint.
const HINT_NAMES: usize = 10;

/// The partitions of `stores` that `plan` selects, ascending by name.
fn partitions<'a>(
    stores: &'a Stores,
    plan: &'a Plan,
) -> impl Iterator<Item = Result<String, MigrateError>> + 'a {
    paged(
        move |after: Option<&String>, limit| {
            stores
                .list_partitions(after.map(String::as_str), limit)
                .map_err(MigrateError::state(""))
        },
        String::clone,
    )
    .filter(move |name| match name {
        Ok(name) => plan.partitions.is_empty() || plan.partitions.contains(name),
        Err(_) => true,
    })
}

/// What the state store holds, when it holds anything: a destination must not.
pub(super) fn holds(stores: &Stores) -> Result<Option<String>, MigrateError> {
    let first = stores
        .list_partitions(None, 1)
        .map_err(MigrateError::state(""))?;
    Ok(first
        .first()
        .map(|name| format!("state partition {name:?} and maybe more")))
}

/// Refuses a partition named in the plan that the source does not hold.
pub(super) fn check_named(from: &Stores, plan: &Plan) -> Result<(), MigrateError> {
    for name in &plan.partitions {
        let len = from
            .state_store(name)
            .map(|state| state.len())
            .map_err(MigrateError::state(name))?;
        if len == 0 {
            let listed = from
                .list_partitions(None, HINT_NAMES)
                .map_err(MigrateError::state(""))?;
            return Err(MigrateError::NotInSource {
                what: "partition",
                name: name.clone(),
                hint: format!(
                    "it holds no flushed key; the source's partitions begin with {listed:?}"
                ),
            });
        }
    }
    Ok(())
}

pub(super) fn copy(
    from: &Stores,
    to: &Stores,
    plan: &Plan,
    progress: &dyn Progress,
) -> Result<CopySummary, MigrateError> {
    let step = Step::begin(progress, Phase::Copy, StoreKind::State);
    let (mut partitions_copied, mut keys) = (0, 0);
    for name in partitions(from, plan) {
        let name = name?;
        let snapshot = from
            .state_store(&name)
            .and_then(|state| state.snapshot())
            .map_err(MigrateError::state(&name))?;
        let mut state = to.state_store(&name).map_err(MigrateError::state(&name))?;
        state
            .restore(&snapshot)
            .and_then(|()| state.flush())
            .map_err(MigrateError::state(&name))?;
        partitions_copied += 1;
        keys += snapshot.len() as u64;
        step.advance(snapshot.len() as u64);
    }
    Ok(CopySummary {
        store: StoreKind::State,
        counts: Counts(vec![("partitions", partitions_copied), ("keys", keys)]),
        handled: Vec::new(),
        not_migrated: Vec::new(),
    })
}

/// One item of the state store: a partition (with `key: None`) or one of its keys.
#[derive(PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub(super) struct StateItem {
    partition: String,
    key: Option<Bytes>,
}

impl fmt::Debug for StateItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            None => write!(f, "partition {:?}", self.partition),
            Some(key) => write!(f, "partition {:?} key {key:?}", self.partition),
        }
    }
}

/// What a [`StateItem`] holds.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub(super) enum StateValue {
    /// A partition's number of keys.
    Keys(u64),
    /// A key's value.
    Value(Bytes),
}

/// Every selected partition and each of its keys; one partition in memory at a time (a
/// partition handle holds its partition in memory anyway, contract §4.5).
pub(super) fn walk(
    stores: &Stores,
    plan: &Plan,
    sink: &mut dyn Sink<StateItem, StateValue>,
) -> Result<Counts, MigrateError> {
    let (mut partitions_seen, mut keys) = (0, 0);
    for name in partitions(stores, plan) {
        let name = name?;
        let snapshot = stores
            .state_store(&name)
            .and_then(|state| state.snapshot())
            .map_err(MigrateError::state(&name))?;
        partitions_seen += 1;
        keys += snapshot.len() as u64;
        sink.push(
            StateItem {
                partition: name.clone(),
                key: None,
            },
            StateValue::Keys(snapshot.len() as u64),
        );
        for (key, value) in snapshot.into_entries() {
            sink.push(
                StateItem {
                    partition: name.clone(),
                    key: Some(key),
                },
                StateValue::Value(value),
            );
        }
    }
    Ok(Counts(vec![
        ("partitions", partitions_seen),
        ("keys", keys),
    ]))
}
