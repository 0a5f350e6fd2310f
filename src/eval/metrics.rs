//! Recall@K and NDCG@K with one relevant item per example (SPEC section 1).
//!
//! With a single relevant item at 0-based rank `r` in the returned list, Recall@K (the hit rate)
//! is 1 if `r < K`, and NDCG@K is `1 / log2(r + 2)` if `r < K` (the ideal DCG is 1).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Sums of Recall@K and NDCG@K over examples, for a fixed list of cut-offs.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricAccumulator {
    ks: Vec<usize>,
    recall: Vec<f64>,
    ndcg: Vec<f64>,
    count: usize,
}

/// Mean metrics over a set of examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// Number of examples.
    pub count: usize,
    /// `recall@K` and `ndcg@K` for each K, by name.
    #[serde(flatten)]
    pub values: BTreeMap<String, f64>,
}

impl MetricSummary {
    /// The value of metric `name` (e.g. `"recall@10"`).
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.get(name).copied()
    }
}

/// The 0-based rank of `target` in `ranked`, if present.
pub fn rank_of(ranked: &[u32], target: u32) -> Option<usize> {
    ranked.iter().position(|&i| i == target)
}

impl MetricAccumulator {
    /// An empty accumulator for cut-offs `ks` (each positive).
    pub fn new(ks: &[usize]) -> Self {
        assert!(!ks.is_empty() && ks.iter().all(|&k| k > 0), "cut-offs must be positive: {ks:?}");
        Self { ks: ks.to_vec(), recall: vec![0.0; ks.len()], ndcg: vec![0.0; ks.len()], count: 0 }
    }

    /// The cut-offs.
    pub fn ks(&self) -> &[usize] {
        &self.ks
    }

    /// Adds one example whose relevant item sits at 0-based `rank` (`None`: not returned).
    pub fn add(&mut self, rank: Option<usize>) {
        self.count += 1;
        let Some(r) = rank else { return };
        let gain = 1.0 / ((r + 2) as f64).log2();
        for (j, &k) in self.ks.iter().enumerate() {
            if r < k {
                self.recall[j] += 1.0;
                self.ndcg[j] += gain;
            }
        }
    }

    /// Adds another accumulator's examples.
    pub fn merge(&mut self, other: &Self) {
        assert_eq!(self.ks, other.ks, "merging accumulators with different cut-offs");
        self.count += other.count;
        self.recall.iter_mut().zip(&other.recall).for_each(|(a, b)| *a += b);
        self.ndcg.iter_mut().zip(&other.ndcg).for_each(|(a, b)| *a += b);
    }

    /// Means over the examples added (0 for an empty accumulator).
    pub fn summary(&self) -> MetricSummary {
        let n = self.count.max(1) as f64;
        let mut values = BTreeMap::new();
        for (j, k) in self.ks.iter().enumerate() {
            values.insert(format!("recall@{k}"), self.recall[j] / n);
            values.insert(format!("ndcg@{k}"), self.ndcg[j] / n);
        }
        MetricSummary { count: self.count, values }
    }
}

/// Metrics over all examples and split by whether the target is a head or a tail item.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketedMetrics {
    /// Every example.
    pub all: MetricAccumulator,
    /// Examples whose target is a head item.
    pub head: MetricAccumulator,
    /// Examples whose target is a tail item.
    pub tail: MetricAccumulator,
}

/// Summaries of [`BucketedMetrics`], as written to JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketedSummary {
    /// Every example.
    pub all: MetricSummary,
    /// Head targets.
    pub head: MetricSummary,
    /// Tail targets.
    pub tail: MetricSummary,
}

impl BucketedMetrics {
    /// Empty accumulators for cut-offs `ks`.
    pub fn new(ks: &[usize]) -> Self {
        Self { all: MetricAccumulator::new(ks), head: MetricAccumulator::new(ks), tail: MetricAccumulator::new(ks) }
    }

    /// Adds one example.
    pub fn add(&mut self, rank: Option<usize>, target_is_head: bool) {
        self.all.add(rank);
        if target_is_head { self.head.add(rank) } else { self.tail.add(rank) }
    }

    /// The three summaries.
    pub fn summary(&self) -> BucketedSummary {
        BucketedSummary { all: self.all.summary(), head: self.head.summary(), tail: self.tail.summary() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn hand_computed_cases() {
        let mut m = MetricAccumulator::new(&[5, 10]);
        m.add(Some(0)); // hit at rank 1: ndcg 1
        m.add(Some(2)); // rank 3: ndcg 1/log2(4) = 0.5
        m.add(Some(7)); // rank 8: only @10, ndcg 1/log2(9)
        m.add(None); // miss
        let s = m.summary();
        assert_eq!(s.count, 4);
        assert!(close(s.get("recall@5").unwrap(), 2.0 / 4.0));
        assert!(close(s.get("recall@10").unwrap(), 3.0 / 4.0));
        assert!(close(s.get("ndcg@5").unwrap(), (1.0 + 0.5) / 4.0));
        assert!(close(s.get("ndcg@10").unwrap(), (1.0 + 0.5 + 1.0 / 9f64.log2()) / 4.0));
    }

    #[test]
    fn edge_cases() {
        // Rank exactly at the cut-off is a miss; rank K-1 a hit.
        let mut m = MetricAccumulator::new(&[5]);
        m.add(Some(5));
        m.add(Some(4));
        let s = m.summary();
        assert!(close(s.get("recall@5").unwrap(), 0.5));
        assert!(close(s.get("ndcg@5").unwrap(), 0.5 / 6f64.log2()));
        // Empty accumulators report zeros, not NaN.
        let e = MetricAccumulator::new(&[1]).summary();
        assert_eq!((e.count, e.get("recall@1"), e.get("ndcg@1")), (0, Some(0.0), Some(0.0)));
        assert_eq!(rank_of(&[4, 9, 2], 2), Some(2));
        assert_eq!(rank_of(&[4, 9, 2], 3), None);
    }

    #[test]
    fn buckets_and_merge_add_up() {
        let mut b = BucketedMetrics::new(&[1]);
        b.add(Some(0), true);
        b.add(None, false);
        b.add(Some(0), false);
        let s = b.summary();
        assert_eq!((s.all.count, s.head.count, s.tail.count), (3, 1, 2));
        assert!(close(s.tail.get("recall@1").unwrap(), 0.5));
        let mut merged = b.head.clone();
        merged.merge(&b.tail);
        assert_eq!(merged.summary(), s.all);
    }

    #[test]
    #[should_panic(expected = "cut-offs must be positive")]
    fn zero_cutoff_panics() {
        MetricAccumulator::new(&[0]);
    }
}
