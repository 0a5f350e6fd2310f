//! Training and validation batches: examples of the leave-one-out split turned into encoder
//! rows (history IDs + EOS, left-padded) and decoder rows (`[0, c1..cL]` -> `[c1..cL, EOS]`).
//!
//! The order of the training examples is a seeded shuffle per epoch, so an epoch's batches
//! depend only on (seed, epoch): a resumed run sees exactly the batches it would have seen.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::data::{Dataset, Example, Split};
use crate::model::vocab::{DecoderInput, EncoderInput, PAD};
use crate::model::ItemTokens;

/// Builds batches of one dataset split for one token vocabulary.
pub struct Batcher<'a> {
    /// The sequences.
    pub ds: &'a Dataset,
    /// The split (history window included).
    pub split: &'a Split,
    /// Every item's token sequence.
    pub items: &'a ItemTokens,
    /// Pad encoder rows to this many tokens at least (fixed shapes on wgpu); 0 = to the longest.
    pub pad_to: usize,
}

/// One batch on the host.
pub struct HostBatch {
    /// Encoder rows.
    pub enc: EncoderInput,
    /// Decoder rows and labels.
    pub dec: DecoderInput,
    /// Labels that count in the loss (not [`PAD`]).
    pub label_tokens: usize,
}

impl<'a> Batcher<'a> {
    /// The batch of `examples`.
    pub fn batch(&self, examples: &[Example]) -> HostBatch {
        let histories: Vec<&[u32]> = examples.iter().map(|&e| self.split.history(self.ds, e)).collect();
        let targets: Vec<u32> = examples.iter().map(|&e| self.split.target(self.ds, e)).collect();
        let enc = self.items.encoder_input_padded(&histories, self.pad_to);
        let dec = self.items.decoder_input(&targets);
        let label_tokens = dec.labels.iter().filter(|&&l| l != PAD as i64).count();
        HostBatch { enc, dec, label_tokens }
    }
}

/// The training examples (windows, users) of `epoch` in a shuffled order that depends only on
/// `seed` and `epoch`.
pub fn epoch_order<T: Clone>(examples: &[T], seed: u64, epoch: usize) -> Vec<T> {
    let mut rng = StdRng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut order = examples.to_vec();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_orders_are_permutations_fixed_by_seed_and_epoch() {
        let ex: Vec<Example> = (0..50).map(|t| Example { user: t % 7, target: t + 1 }).collect();
        let a = epoch_order(&ex, 1, 3);
        assert_eq!(a, epoch_order(&ex, 1, 3));
        assert_ne!(a, epoch_order(&ex, 1, 4));
        let mut sorted = a.clone();
        sorted.sort_by_key(|e| (e.target, e.user));
        assert_eq!(sorted, ex);
    }
}
