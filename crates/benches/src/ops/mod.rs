//! One loaded [`Bench`](crate::measure::Bench) per store, each with the operations the
//! criterion groups and the report time, described by a [`Workload`].

pub mod engine;
pub mod ledger;
pub mod segments;
pub mod side_effects;
pub mod state;

/// What one timed operation is, as the report and the criterion groups name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// The store trait: `StateStore`, `StoreEngine`, ...
    pub store: &'static str,
    /// The operation: `get hit`, `put_batch`, ...
    pub op: &'static str,
    /// The parameters: dataset size, batch size, durability, threads (may be empty).
    pub param: String,
    /// Calls timed together in one sample (more than 1 for sub-microsecond operations).
    pub calls_per_sample: usize,
    /// Items one call handles (keys, drafts, entries), for the items/s throughput.
    pub items_per_call: u64,
}

impl Workload {
    /// The workload's name in criterion: `store/op/param`, spaces as `_`.
    pub fn criterion_group(&self) -> String {
        let mut name = format!("{}/{}", self.store, self.op);
        if !self.param.is_empty() {
            name.push('/');
            name.push_str(&self.param);
        }
        name.replace(", ", "_").replace(' ', "_")
    }

    /// The workload's row label: `op (param)`.
    pub fn label(&self) -> String {
        if self.param.is_empty() {
            self.op.to_owned()
        } else {
            format!("{} ({})", self.op, self.param)
        }
    }
}

/// `n` keys as a short label: `1k`, `100k`, `1M`.
pub fn size_label(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

/// The size a label of [`size_label`] names (`1k`, `100k`, `1M`, or digits), when it is a
/// positive multiple of [`GROUP_LEN`](crate::workloads::GROUP_LEN) (every prefix scan
/// then reads a whole group).
pub fn parse_size(label: &str) -> Option<u64> {
    let (digits, scale) = if let Some(d) = label.strip_suffix('M') {
        (d, 1_000_000)
    } else if let Some(d) = label.strip_suffix('k') {
        (d, 1_000)
    } else {
        (label, 1)
    };
    let n = digits.parse::<u64>().ok()?.checked_mul(scale)?;
    (n > 0 && n.is_multiple_of(crate::workloads::GROUP_LEN)).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let w = Workload {
            store: "StateStore",
            op: "get hit",
            param: "100k keys".into(),
            calls_per_sample: 100,
            items_per_call: 1,
        };
        assert_eq!(w.criterion_group(), "StateStore/get_hit/100k_keys");
        assert_eq!(w.label(), "get hit (100k keys)");
        assert_eq!(size_label(1_000_000), "1M");
        assert_eq!(size_label(100_000), "100k");
        assert_eq!(size_label(1_500), "1500");
        for n in [1_000, 100_000, 1_000_000, 1_500] {
            assert_eq!(parse_size(&size_label(n)), Some(n));
        }
        assert_eq!(parse_size("150"), None);
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("x"), None);
    }
}
