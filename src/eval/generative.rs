//! A trained generator as a [`Ranker`]: constrained beam search over the catalogue's trie,
//! the beams' order as the ranking (SPEC section 1).

use burn::tensor::Device;

use super::evaluate::Ranker;
use crate::decode::{beam_search_scored, Ranked, Trie};
use crate::model::{Generator, ItemTokens};

/// Ranks items with beam search on a generator (evaluation mode: no dropout).
pub struct GenerativeRanker<'a> {
    /// The model (on a device without autodiff).
    pub model: &'a Generator,
    /// Every item's tokens.
    pub items: &'a ItemTokens,
    /// The prefix trie over the items' IDs.
    pub trie: &'a Trie,
    /// Where the model runs.
    pub device: Device,
    /// Beams kept (SPEC: 20); at least the largest cut-off asked for.
    pub beam: usize,
    /// The length penalty of the ranking (`EvalConfig::length_penalty`).
    pub length_penalty: f32,
    /// Pad encoder rows to at least this many tokens (fixed shapes on wgpu); 0 = longest row.
    pub pad_to: usize,
    /// Name in reports.
    pub name: String,
}

impl GenerativeRanker<'_> {
    /// The best `k` items with their scores (summed token log-probabilities, divided by
    /// `len^length_penalty`) per history.
    pub fn rank(&self, histories: &[&[u32]], k: usize) -> Ranked {
        if histories.is_empty() {
            return Vec::new();
        }
        let beam = self.beam.max(k);
        let enc = self.model.encoder_batch(&self.items.encoder_input_padded(histories, self.pad_to), &self.device);
        let mut ranked = beam_search_scored(self.model, &enc, self.trie, beam, beam, self.length_penalty);
        for r in ranked.iter_mut() {
            r.truncate(k);
        }
        ranked
    }
}

impl Ranker for GenerativeRanker<'_> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn top_k(&mut self, histories: &[&[u32]], k: usize) -> Vec<Vec<u32>> {
        self.rank(histories, k).into_iter().map(|r| r.into_iter().map(|(item, _)| item).collect()).collect()
    }
}
