//! Models that score every item of the catalogue (SASRec), evaluated by full ranking on the
//! device: a batch of histories gives a `[batch, items]` score matrix, the targets' ranks come
//! from [`super::ranking::target_ranks`] (ties: smaller item id first) and only the ranks come
//! back to the host. Already-seen items stay in the ranking, as for the generators and the
//! baselines, unless `exclude_seen` asks to remove them (a common choice in SASRec papers,
//! reported separately). Recommendations use top-k on the device.

use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Device, Tensor, TensorData};

use super::evaluate::{evaluate_with, EvalResult};
use super::ranking::target_ranks;
use crate::data::{Dataset, Part, Popularity, Split};
use crate::model::sasrec::{SasRec, SequenceInput};

/// A trained SASRec as a full-catalogue scorer (evaluation mode: no dropout).
pub struct SasRecScorer<'a> {
    /// The model (on a device without autodiff).
    pub model: &'a SasRec,
    /// Where it runs.
    pub device: Device,
    /// Pad every batch to this many columns (fixed shapes on wgpu); 0 = to the longest row.
    pub pad_to: usize,
    /// Name in reports.
    pub name: String,
    /// Give the items of each history the lowest score, so they rank last.
    pub exclude_seen: bool,
}

/// The score that excluded items get (finite, as [`target_ranks`] needs).
pub const EXCLUDED: f32 = -1e30;

/// One recommended item: dense id, score, and probability under the softmax over the catalogue.
pub type ScoredItem = (u32, f32, f32);

impl SasRecScorer<'_> {
    /// Scores of every item after each history (the last `max_len` items of it are read).
    ///
    /// # Shapes
    /// - output: `[histories, items]`
    pub fn scores(&self, histories: &[&[u32]]) -> Tensor<2> {
        let x = SequenceInput::new(histories, self.model.max_len(), self.pad_to).to_device(&self.device);
        let scores = self.model.scores(&x);
        if !self.exclude_seen {
            return scores;
        }
        let items = self.model.num_items();
        let mut seen = vec![false; histories.len() * items];
        for (r, h) in histories.iter().enumerate() {
            h.iter().for_each(|&i| seen[r * items + i as usize] = true);
        }
        let seen = Tensor::<2, Bool>::from_data(TensorData::new(seen, [histories.len(), items]), &self.device);
        scores.mask_fill(seen, EXCLUDED)
    }

    /// The best `k` items per history with their scores and softmax probabilities, best first.
    pub fn top_k(&self, histories: &[&[u32]], k: usize) -> Vec<Vec<ScoredItem>> {
        if histories.is_empty() {
            return Vec::new();
        }
        let k = k.min(self.model.num_items());
        let scores = self.scores(histories);
        let (values, ids) = scores.clone().topk_with_indices(k, 1); // [histories, k]
        let probs = softmax(scores, 1).gather(1, ids.clone());
        let v: Vec<f32> = values.into_data().convert::<f32>().try_to_vec().expect("floats");
        let p: Vec<f32> = probs.into_data().convert::<f32>().try_to_vec().expect("floats");
        let i: Vec<i64> = ids.into_data().convert::<i64>().try_to_vec().expect("ints");
        (0..histories.len()).map(|r| (r * k..(r + 1) * k).map(|j| (i[j] as u32, v[j], p[j])).collect()).collect()
    }
}

/// Evaluates `scorer` on `part` of `split` by full ranking, in batches of `batch_size`.
pub fn evaluate_scores(
    scorer: &SasRecScorer,
    ds: &Dataset,
    split: &Split,
    part: Part,
    pop: &Popularity,
    ks: &[usize],
    batch_size: usize,
) -> EvalResult {
    evaluate_with(&scorer.name, ds, split, part, pop, ks, batch_size, |histories, targets| {
        target_ranks(scorer.scores(histories), targets).into_iter().map(|r| Some(r as usize)).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sasrec::SasRecConfig;

    #[test]
    fn excluded_history_items_never_come_first_and_top_k_is_sorted() {
        let device = Device::flex();
        let c = SasRecConfig { hidden: 8, blocks: 1, max_len: 4, dropout: 0.0, ..Default::default() };
        let model = c.init(9, &device);
        let histories: [&[u32]; 2] = [&[1, 2, 3], &[8]];
        let mut scorer = SasRecScorer { model: &model, device, pad_to: 0, name: "s".into(), exclude_seen: true };
        let lists = scorer.top_k(&histories, 5);
        for (list, h) in lists.iter().zip(histories) {
            assert_eq!(list.len(), 5);
            assert!(list.iter().all(|(i, _, _)| !h.contains(i)), "{list:?}");
            assert!(list.windows(2).all(|w| w[0].1 >= w[1].1 && w[0].2 >= w[1].2), "{list:?}");
        }
        // Row 0: its three items rank last (6, 7, 8 of 0..8), whatever their scores.
        let ranks = target_ranks(scorer.scores(&histories), &[2, 8]);
        assert!(ranks[0] >= 6 && ranks[1] == 8, "{ranks:?}");
        // Kept in the ranking, the top 9 are the whole catalogue.
        scorer.exclude_seen = false;
        let mut all: Vec<u32> = scorer.top_k(&histories[..1], 20)[0].iter().map(|x| x.0).collect();
        all.sort();
        assert_eq!(all, (0..9).collect::<Vec<_>>());
    }
}
