//! Side-effect migration: only the inbound call queues of the callees the plan names;
//! output slots and inter-call outputs cannot be enumerated through the API.

use store_api::{ChainPos, InboundInterCall, LyquidId, SideEffectStore};

use super::{Difference, MigrateError, PAGE, Plan, StoreKind, record};
use crate::migrate::report::CopySummary;
use crate::stores::Stores;

/// The read bound that admits every call but one made at position `u128::MAX`.
const UNTIL: ChainPos = ChainPos(u128::MAX);

/// Every readable inbound call of `callee`, ascending by order key.
fn inbound(
    store: &dyn SideEffectStore,
    callee: &LyquidId,
) -> Result<Vec<InboundInterCall>, MigrateError> {
    let mut all: Vec<InboundInterCall> = Vec::new();
    loop {
        let after = all.last().map(|call| call.order_key);
        let page = store.read_inbound_inter_calls(callee, after.as_ref(), UNTIL, PAGE)?;
        let done = page.len() < PAGE;
        all.extend(page);
        if done {
            return Ok(all);
        }
    }
}

pub(super) fn check_empty(to: &Stores, plan: &Plan) -> Result<(), MigrateError> {
    let store = to.side_effects();
    for callee in &plan.callees {
        if !store
            .read_inbound_inter_calls(callee, None, UNTIL, 1)?
            .is_empty()
        {
            return Err(MigrateError::DestinationNotEmpty {
                store: StoreKind::SideEffects,
                detail: format!("callee {callee:?} has inbound calls"),
            });
        }
    }
    Ok(())
}

pub(super) fn copy(from: &Stores, to: &Stores, plan: &Plan) -> Result<CopySummary, MigrateError> {
    let (src, dst) = (from.side_effects(), to.side_effects());
    let mut calls = 0;
    for callee in &plan.callees {
        let queue = inbound(src.as_ref(), callee)?;
        for chunk in queue.chunks(PAGE) {
            dst.append_inbound_inter_calls(chunk)?;
        }
        calls += queue.len();
    }
    Ok(CopySummary {
        store: StoreKind::SideEffects,
        copied: format!(
            "inbound call queues of named callees {}, calls {calls}",
            plan.callees.len()
        ),
        not_migrated: vec![
            "event, call and timer outputs (write_outputs) and inter-call outputs: the \
             SideEffectStore API has no way to enumerate them"
                .to_owned(),
            "inbound calls of callees not named with --callee, and calls made at position \
             u128::MAX (read_inbound_inter_calls' bound is exclusive)"
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
    let (src, dst) = (from.side_effects(), to.side_effects());
    for callee in &plan.callees {
        let (a, b) = (
            inbound(src.as_ref(), callee)?,
            inbound(dst.as_ref(), callee)?,
        );
        if a != b {
            let first = a.iter().zip(&b).position(|(x, y)| x != y);
            let detail = format!(
                "callee {callee:?}: source {} inbound calls, destination {}, first difference at \
                 index {}",
                a.len(),
                b.len(),
                first.unwrap_or(a.len().min(b.len()))
            );
            if !record(differences, StoreKind::SideEffects, detail) {
                return Ok(());
            }
        }
    }
    Ok(())
}
