//! Percentiles and means of latency samples.

/// The `q`-quantile (`0.0..=1.0`) of `sorted` (ascending) by the nearest-rank method: the
/// smallest sample such that at least `q` of all samples are at or below it. `None` when
/// there is no sample.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let q = q.clamp(0.0, 1.0);
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The median, 99th percentile and mean of `samples` (in any order); zeros when empty.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl Summary {
    /// Summarizes `samples`.
    pub fn of(samples: &[f64]) -> Self {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return Summary::default();
        }
        Summary {
            p50: percentile(&sorted, 0.50).unwrap_or(0.0),
            p99: percentile(&sorted, 0.99).unwrap_or(0.0),
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let data: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&data, 0.50), Some(50.0));
        assert_eq!(percentile(&data, 0.99), Some(99.0));
        assert_eq!(percentile(&data, 1.0), Some(100.0));
        assert_eq!(percentile(&data, 0.0), Some(1.0));
        assert_eq!(percentile(&[7.0], 0.99), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&ten, 0.99), Some(10.0));
        assert_eq!(percentile(&ten, 0.5), Some(5.0));
    }

    #[test]
    fn summary_sorts_and_averages() {
        let s = Summary::of(&[3.0, 1.0, 2.0, 4.0]);
        assert_eq!(s.p50, 2.0);
        assert_eq!(s.p99, 4.0);
        assert_eq!(s.mean, 2.5);
        assert_eq!(Summary::of(&[]), Summary::default());
    }
}
