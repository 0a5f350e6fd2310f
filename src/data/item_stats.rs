//! Per-item statistics for FlexCode's router (SPEC section 5), from the training part of the
//! split only: each user's `items[..len-2]` ([`Split::train_items`]), never a validation or
//! test target.

use super::dataset::Dataset;
use super::split::Split;

/// Popularity and recency of every dense item over the training part of the split.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemStats {
    /// Training interactions per dense item.
    pub counts: Vec<u32>,
    /// `log(1 + count)` standardised to mean 0 and standard deviation 1 over the items (all 0
    /// when every item has the same count).
    pub log_count_z: Vec<f32>,
    /// Popularity percentile in `[0, 1]`: `(rank - 1) / (items - 1)` with items ranked by
    /// count from the least popular (rank 1) up, tied items sharing their mean rank; a sole
    /// most popular item gets 1, a sole least popular 0 (a one-item catalogue: 1).
    pub percentile: Vec<f32>,
    /// Recency in `[0, 1]`, the mean over the item's training interactions of: the timestamp
    /// normalised from the min..max of all training times to 0..1 when the dataset has times
    /// (a zero span gives 1); otherwise the relative position `pos / (len - 1)` within the
    /// user's training part of length `len` (a one-item part gives 1). Items without training
    /// interactions get 0.
    pub recency: Vec<f32>,
    /// Whether `recency` comes from timestamps ([`Dataset::times`]) rather than positions.
    pub uses_timestamps: bool,
}

impl ItemStats {
    /// Computes the statistics of every item of `ds` from the training part of its split.
    pub fn from_training(ds: &Dataset) -> Self {
        let mut counts = vec![0u32; ds.num_items()];
        for &i in Split::train_items(ds).flatten() {
            counts[i as usize] += 1;
        }
        let (recency, uses_timestamps) = match &ds.times {
            Some(times) => (time_recency(ds, times), true),
            None => (position_recency(ds), false),
        };
        Self { log_count_z: log_count_z(&counts), percentile: percentile(&counts), counts, recency, uses_timestamps }
    }

    /// The router's input features per dense item: `[log_count_z, percentile, recency]`.
    pub fn features(&self) -> Vec<[f32; 3]> {
        (0..self.counts.len()).map(|i| [self.log_count_z[i], self.percentile[i], self.recency[i]]).collect()
    }
}

/// Consecutive training transitions `(item, next item)` over every user's training part, user
/// by user in dense order, each in chronological order.
pub fn training_transitions(ds: &Dataset) -> Vec<(u32, u32)> {
    Split::train_items(ds).flat_map(|s| s.windows(2).map(|w| (w[0], w[1]))).collect()
}

/// `log(1 + count)` standardised over the items (population standard deviation).
fn log_count_z(counts: &[u32]) -> Vec<f32> {
    let logs: Vec<f64> = counts.iter().map(|&c| (c as f64).ln_1p()).collect();
    let n = logs.len().max(1) as f64;
    let mean = logs.iter().sum::<f64>() / n;
    let std = (logs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    if std < 1e-12 {
        return vec![0.0; logs.len()];
    }
    logs.iter().map(|x| ((x - mean) / std) as f32).collect()
}

/// Popularity percentile with tied counts sharing their mean rank (see [`ItemStats::percentile`]).
fn percentile(counts: &[u32]) -> Vec<f32> {
    let n = counts.len();
    if n == 1 {
        return vec![1.0];
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| counts[i]);
    let mut out = vec![0.0f32; n];
    let mut start = 0;
    while start < n {
        let end = start + order[start..].iter().take_while(|&&i| counts[i] == counts[order[start]]).count();
        // 0-based ranks start..end share their mean.
        let mean_rank = (start + end - 1) as f64 / 2.0;
        for &i in &order[start..end] {
            out[i] = (mean_rank / (n - 1) as f64) as f32;
        }
        start = end;
    }
    out
}

/// Mean of `values[i]` per item `i`: `sums[i] / counts[i]`, 0 where the count is 0.
fn means(sums: &[f64], counts: &[u32]) -> Vec<f32> {
    sums.iter().zip(counts).map(|(&s, &c)| if c == 0 { 0.0 } else { (s / c as f64) as f32 }).collect()
}

/// Mean relative position `pos / (len - 1)` of each item within users' training parts.
fn position_recency(ds: &Dataset) -> Vec<f32> {
    let (mut sums, mut counts) = (vec![0.0f64; ds.num_items()], vec![0u32; ds.num_items()]);
    for s in Split::train_items(ds) {
        for (pos, &i) in s.iter().enumerate() {
            sums[i as usize] += if s.len() == 1 { 1.0 } else { pos as f64 / (s.len() - 1) as f64 };
            counts[i as usize] += 1;
        }
    }
    means(&sums, &counts)
}

/// Mean normalised timestamp of each item's training interactions.
fn time_recency(ds: &Dataset, times: &[Vec<f64>]) -> Vec<f32> {
    let train_times = || Split::train_items(ds).zip(times).map(|(s, t)| &t[..s.len()]);
    let (lo, hi) = train_times().flatten().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &t| (lo.min(t), hi.max(t)));
    let (mut sums, mut counts) = (vec![0.0f64; ds.num_items()], vec![0u32; ds.num_items()]);
    for (s, t) in Split::train_items(ds).zip(train_times()) {
        for (&i, &t) in s.iter().zip(t) {
            sums[i as usize] += if hi > lo { (t - lo) / (hi - lo) } else { 1.0 };
            counts[i as usize] += 1;
        }
    }
    means(&sums, &counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DatasetOptions, InteractionLog};

    /// A dataset from per-user sequences whose items first appear in the order 0, 1, 2... (so
    /// dense id = raw id); with `times`, the log has timestamps `times[u][k]`, otherwise
    /// positions.
    fn dataset(seqs: &[&[u32]], times: Option<&[&[f64]]>) -> Dataset {
        let mut log = InteractionLog::new("t");
        for (u, s) in seqs.iter().enumerate() {
            for (k, &i) in s.iter().enumerate() {
                let t = times.map_or(k as f64, |t| t[u][k]);
                log.push(&format!("u{u}"), &i.to_string(), t, None);
            }
        }
        log.has_timestamps = times.is_some();
        let ds = Dataset::from_log(log, &DatasetOptions { k_core: 0, min_rating: None }).unwrap();
        for d in 0..ds.num_items() as u32 {
            assert_eq!(ds.items.raw(d), d.to_string(), "test datasets list items in order first");
        }
        ds
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
    }

    /// Training parts: u0 [0, 1, 2, 0], u1 [0, 3], u2 [1]; item 4 only in validation/test.
    const SEQS: &[&[u32]] = &[&[0, 1, 2, 0, 3, 4], &[0, 3, 4, 1], &[1, 2, 3]];

    #[test]
    fn counts_z_scores_and_percentiles() {
        let st = ItemStats::from_training(&dataset(SEQS, None));
        assert_eq!(st.counts, [3, 2, 1, 1, 0]);
        let logs: Vec<f64> = st.counts.iter().map(|&c| (c as f64).ln_1p()).collect();
        let mean = logs.iter().sum::<f64>() / 5.0;
        let std = (logs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 5.0).sqrt();
        let z: Vec<f32> = logs.iter().map(|x| ((x - mean) / std) as f32).collect();
        assert!(close(&st.log_count_z, &z), "{:?}", st.log_count_z);
        // Ranks from the least popular (0-based): item 4 -> 0, items 2 and 3 share 1.5,
        // item 1 -> 3, item 0 -> 4; divided by 4.
        assert!(close(&st.percentile, &[1.0, 0.75, 0.375, 0.375, 0.0]), "{:?}", st.percentile);
        assert!(!st.uses_timestamps);
        assert_eq!(st.features()[1], [st.log_count_z[1], 0.75, st.recency[1]]);
    }

    #[test]
    fn position_recency_is_the_mean_relative_position() {
        let st = ItemStats::from_training(&dataset(SEQS, None));
        // Item 0: u0 positions 0 and 3 of 4 (0, 1), u1 position 0 of 2 (0) -> 1/3.
        // Item 1: u0 1/3, u2 a one-item part -> 1 => 2/3. Item 2: 2/3. Item 3: u1 1/1 -> 1.
        assert!(close(&st.recency, &[1.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0, 1.0, 0.0]), "{:?}", st.recency);
    }

    #[test]
    fn time_recency_normalises_training_times() {
        let times: &[&[f64]] = &[&[10.0, 20.0, 30.0, 50.0, 900.0, 901.0], &[0.0, 40.0, 950.0, 960.0], &[20.0, 1.0e6, 2.0e6]];
        let ds = dataset(SEQS, Some(times));
        assert!(ds.times.is_some());
        let st = ItemStats::from_training(&ds);
        assert!(st.uses_timestamps);
        // Training times span 0..50 (validation/test times are ignored).
        // Item 0: (10, 50, 0) -> (0.2 + 1 + 0) / 3; item 1: (20, 20) -> 0.4; item 2: 30 -> 0.6;
        // item 3: 40 -> 0.8.
        assert!(close(&st.recency, &[0.4, 0.4, 0.6, 0.8, 0.0]), "{:?}", st.recency);
    }

    #[test]
    fn validation_and_test_items_never_count() {
        let a = dataset(SEQS, None);
        let mut b = a.clone();
        // Change only the last two items of every user (to other existing items).
        for s in &mut b.sequences {
            let n = s.len();
            s[n - 2] = (s[n - 2] + 1) % 5;
            s[n - 1] = (s[n - 1] + 3) % 5;
        }
        assert_ne!(a.sequences, b.sequences);
        assert_eq!(ItemStats::from_training(&a), ItemStats::from_training(&b));
        assert_eq!(training_transitions(&a), training_transitions(&b));
        // The same with timestamps, whose last two entries also change.
        let mut c = a.clone();
        c.times = Some(a.sequences.iter().map(|s| (0..s.len()).map(|k| k as f64).collect()).collect());
        let mut d = c.clone();
        d.sequences = b.sequences.clone();
        for t in d.times.as_mut().unwrap() {
            let n = t.len();
            t[n - 2] += 100.0;
            t[n - 1] += 1000.0;
        }
        assert_eq!(ItemStats::from_training(&c), ItemStats::from_training(&d));
    }

    #[test]
    fn transitions_are_consecutive_training_pairs() {
        let ds = dataset(SEQS, None);
        assert_eq!(training_transitions(&ds), [(0, 1), (1, 2), (2, 0), (0, 3)]);
    }

    #[test]
    fn equal_counts_give_zero_z_scores() {
        let st = ItemStats::from_training(&dataset(&[&[0, 1, 0, 1], &[1, 0, 1, 0]], None));
        assert_eq!(st.counts, [2, 2]);
        assert_eq!(st.log_count_z, [0.0, 0.0]);
        assert_eq!(st.percentile, [0.5, 0.5]);
    }
}
