//! Item popularity from the training part of the split, and the head/tail buckets.

use super::dataset::Dataset;
use super::split::Split;

/// Training-set interaction counts and the head/tail split of the catalogue.
///
/// Rule *(ours, SPEC section 1)*: items are ranked by training count (ties: smaller dense id
/// first); the first `ceil(head_fraction * items)` are the head, the rest the tail.
#[derive(Debug, Clone)]
pub struct Popularity {
    /// Interactions of each item in the training part (all but each user's last two items).
    pub counts: Vec<u32>,
    /// Items by descending count, ties by ascending id.
    pub ranking: Vec<u32>,
    /// Whether each item is in the head bucket.
    pub is_head: Vec<bool>,
    /// The fraction of items called head.
    pub head_fraction: f64,
}

impl Popularity {
    /// Counts the training interactions of `ds` and splits the catalogue.
    pub fn from_training(ds: &Dataset, head_fraction: f64) -> Self {
        assert!(
            (0.0..=1.0).contains(&head_fraction),
            "head_fraction must lie in [0, 1], got {head_fraction}"
        );
        let mut counts = vec![0u32; ds.num_items()];
        for s in Split::train_items(ds) {
            for &i in s {
                counts[i as usize] += 1;
            }
        }
        let mut ranking: Vec<u32> = (0..ds.num_items() as u32).collect();
        ranking.sort_by(|&a, &b| counts[b as usize].cmp(&counts[a as usize]).then(a.cmp(&b)));
        let n_head = (head_fraction * ds.num_items() as f64).ceil() as usize;
        let mut is_head = vec![false; ds.num_items()];
        for &i in &ranking[..n_head.min(ranking.len())] {
            is_head[i as usize] = true;
        }
        Self { counts, ranking, is_head, head_fraction }
    }

    /// Number of head items.
    pub fn num_head(&self) -> usize {
        self.is_head.iter().filter(|&&h| h).count()
    }

    /// Share of training interactions that fall on head items.
    pub fn head_interaction_share(&self) -> f64 {
        let total: u64 = self.counts.iter().map(|&c| c as u64).sum();
        let head: u64 =
            self.counts.iter().zip(&self.is_head).filter(|(_, &h)| h).map(|(&c, _)| c as u64).sum();
        if total == 0 { 0.0 } else { head as f64 / total as f64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DatasetOptions, InteractionLog};

    #[test]
    fn counts_only_training_items_and_splits_head() {
        let mut log = InteractionLog::new("t");
        // user a: 1 1 2 | 3 4 ; user b: 1 2 3 | 4 4   (after '|' = valid, test)
        for (t, i) in ["1", "1", "2", "3", "4"].iter().enumerate() {
            log.push("a", i, t as f64, None);
        }
        for (t, i) in ["1", "2", "3", "4", "4"].iter().enumerate() {
            log.push("b", i, t as f64, None);
        }
        let ds = Dataset::from_log(log, &DatasetOptions { k_core: 0, min_rating: None }).unwrap();
        let pop = Popularity::from_training(&ds, 0.5);
        assert_eq!(pop.counts, vec![3, 2, 1, 0]);
        assert_eq!(pop.ranking, vec![0, 1, 2, 3]);
        assert_eq!(pop.is_head, vec![true, true, false, false]);
        assert!((pop.head_interaction_share() - 5.0 / 6.0).abs() < 1e-12);
    }
}
