//! Summary figures of a dataset and its split, as `sidrec data stats` prints them.

use serde::Serialize;

use super::dataset::Dataset;
use super::popularity::Popularity;
use super::split::Split;

/// Sequence-length quantiles.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LengthQuantiles {
    /// Shortest sequence.
    pub min: usize,
    /// 25th percentile.
    pub p25: usize,
    /// Median.
    pub p50: usize,
    /// 75th percentile.
    pub p75: usize,
    /// 90th percentile.
    pub p90: usize,
    /// Longest sequence.
    pub max: usize,
    /// Mean length.
    pub mean: f64,
}

/// Everything `sidrec data stats` reports.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetStats {
    /// Dataset name.
    pub name: String,
    /// Interactions in the input before filtering.
    pub raw_interactions: usize,
    /// Users kept.
    pub users: usize,
    /// Items kept.
    pub items: usize,
    /// Interactions kept.
    pub interactions: usize,
    /// interactions / (users * items).
    pub density: f64,
    /// Per-user sequence lengths.
    pub sequence_length: LengthQuantiles,
    /// Training examples.
    pub train_examples: usize,
    /// Validation examples.
    pub valid_examples: usize,
    /// Test examples.
    pub test_examples: usize,
    /// History window length.
    pub max_len: usize,
    /// Items with at least one text field.
    pub items_with_text: usize,
    /// Head fraction used for the buckets.
    pub head_fraction: f64,
    /// Items in the head bucket.
    pub head_items: usize,
    /// Share of training interactions on head items.
    pub head_interaction_share: f64,
}

/// The `q`-quantile (nearest rank) of sorted `v`.
fn quantile(sorted: &[usize], q: f64) -> usize {
    let idx = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

impl LengthQuantiles {
    /// Quantiles of `lengths` (must be non-empty).
    pub fn of(mut lengths: Vec<usize>) -> Self {
        assert!(!lengths.is_empty(), "no sequences");
        lengths.sort_unstable();
        let mean = lengths.iter().sum::<usize>() as f64 / lengths.len() as f64;
        Self {
            min: lengths[0],
            p25: quantile(&lengths, 0.25),
            p50: quantile(&lengths, 0.5),
            p75: quantile(&lengths, 0.75),
            p90: quantile(&lengths, 0.9),
            max: *lengths.last().expect("non-empty"),
            mean,
        }
    }
}

impl DatasetStats {
    /// Computes the figures for `ds`, its split and its popularity buckets.
    pub fn compute(ds: &Dataset, split: &Split, pop: &Popularity) -> Self {
        let interactions = ds.num_interactions();
        Self {
            name: ds.name.clone(),
            raw_interactions: ds.raw_interactions,
            users: ds.num_users(),
            items: ds.num_items(),
            interactions,
            density: interactions as f64 / (ds.num_users() as f64 * ds.num_items() as f64),
            sequence_length: LengthQuantiles::of(ds.sequences.iter().map(Vec::len).collect()),
            train_examples: split.train.len(),
            valid_examples: split.valid.len(),
            test_examples: split.test.len(),
            max_len: split.max_len,
            items_with_text: ds.items_with_text(),
            head_fraction: pop.head_fraction,
            head_items: pop.num_head(),
            head_interaction_share: pop.head_interaction_share(),
        }
    }
}

/// Formats an integer with thousands separators (22363 -> "22,363").
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl std::fmt::Display for DatasetStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let q = &self.sequence_length;
        writeln!(f, "dataset            {}", self.name)?;
        writeln!(f, "users              {}", thousands(self.users))?;
        writeln!(f, "items              {}", thousands(self.items))?;
        writeln!(
            f,
            "interactions       {} (of {} in the input)",
            thousands(self.interactions),
            thousands(self.raw_interactions)
        )?;
        writeln!(f, "density            {:.5}", self.density)?;
        writeln!(
            f,
            "sequence length    min {} | p25 {} | median {} | p75 {} | p90 {} | max {} | mean {:.2}",
            q.min, q.p25, q.p50, q.p75, q.p90, q.max, q.mean
        )?;
        writeln!(
            f,
            "split              train {} | valid {} | test {} (leave-one-out, history window {})",
            thousands(self.train_examples),
            thousands(self.valid_examples),
            thousands(self.test_examples),
            self.max_len
        )?;
        writeln!(f, "items with text    {}", thousands(self.items_with_text))?;
        write!(
            f,
            "head/tail          {} head items (top {:.0}% by training count) hold {:.1}% of training interactions",
            thousands(self.head_items),
            self.head_fraction * 100.0,
            self.head_interaction_share * 100.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_separators() {
        let q = LengthQuantiles::of(vec![5, 1, 3, 2, 4]);
        assert_eq!((q.min, q.p25, q.p50, q.p75, q.max), (1, 2, 3, 4, 5));
        assert_eq!(q.mean, 3.0);
        assert_eq!(thousands(22363), "22,363");
        assert_eq!(thousands(198502), "198,502");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000209), "1,000,209");
    }
}
