//! The shared evaluation loop: any [`Ranker`] over a part of the split, full-catalogue
//! ranking, with the head/tail breakdown.

use serde::{Deserialize, Serialize};

use super::metrics::{rank_of, BucketedMetrics, BucketedSummary};
use crate::data::{Dataset, Part, Popularity, Split};

/// Anything that returns, for a batch of histories, the top `k` items of the whole catalogue in
/// ranked order (best first, no duplicates).
pub trait Ranker {
    /// A short name for reports (e.g. `most-popular`).
    fn name(&self) -> String;

    /// The top-`k` items for each history, best first.
    fn top_k(&mut self, histories: &[&[u32]], k: usize) -> Vec<Vec<u32>>;
}

/// One model's metrics on one part of the split.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalResult {
    /// The ranker's name.
    pub model: String,
    /// `valid` or `test`.
    pub part: String,
    /// All, head and tail metrics.
    #[serde(flatten)]
    pub metrics: BucketedSummary,
}

/// Evaluates `ranker` on `part` of `split`, in batches of `batch_size` examples, at cut-offs `ks`.
pub fn evaluate(
    ranker: &mut dyn Ranker,
    ds: &Dataset,
    split: &Split,
    part: Part,
    pop: &Popularity,
    ks: &[usize],
    batch_size: usize,
) -> EvalResult {
    let max_k = *ks.iter().max().expect("at least one cut-off");
    let name = ranker.name();
    evaluate_with(&name, ds, split, part, pop, ks, batch_size, |histories, targets| {
        let ranked = ranker.top_k(histories, max_k);
        assert_eq!(ranked.len(), histories.len(), "{name} returned the wrong number of lists");
        ranked.iter().zip(targets).map(|(list, &t)| rank_of(&list[..list.len().min(max_k)], t)).collect()
    })
}

/// The evaluation loop: `ranks(histories, targets)` gives each target's 0-based rank in the
/// full-catalogue ranking of its history (`None`: not ranked), batch by batch.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_with(
    name: &str,
    ds: &Dataset,
    split: &Split,
    part: Part,
    pop: &Popularity,
    ks: &[usize],
    batch_size: usize,
    mut ranks: impl FnMut(&[&[u32]], &[u32]) -> Vec<Option<usize>>,
) -> EvalResult {
    let mut metrics = BucketedMetrics::new(ks);
    for batch in split.part(part).chunks(batch_size.max(1)) {
        let histories: Vec<&[u32]> = batch.iter().map(|&ex| split.history(ds, ex)).collect();
        let targets: Vec<u32> = batch.iter().map(|&ex| split.target(ds, ex)).collect();
        for (rank, &target) in ranks(&histories, &targets).into_iter().zip(&targets) {
            metrics.add(rank, pop.is_head[target as usize]);
        }
    }
    let part = match part {
        Part::Train => "train",
        Part::Valid => "valid",
        Part::Test => "test",
    };
    EvalResult { model: name.to_string(), part: part.to_string(), metrics: metrics.summary() }
}
