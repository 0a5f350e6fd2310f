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
    /// The longest encoder row any history can give: `max_len` items of the longest ID + EOS.
    pub fn full_length(split: &Split, items: &ItemTokens) -> usize {
        split.max_len * items.max_len() + 1
    }

    /// The batch of `examples`.
    pub fn batch(&self, examples: &[Example]) -> HostBatch {
        let histories: Vec<&[u32]> = examples.iter().map(|&e| self.split.history(self.ds, e)).collect();
        let targets: Vec<u32> = examples.iter().map(|&e| self.split.target(self.ds, e)).collect();
        let enc = left_pad(self.items.encoder_input(&histories), self.pad_to);
        let dec = self.items.decoder_input(&targets);
        let label_tokens = dec.labels.iter().filter(|&&l| l != PAD as i64).count();
        HostBatch { enc, dec, label_tokens }
    }
}

/// Widens left-padded encoder rows to at least `seq` columns (more padding on the left).
pub fn left_pad(input: EncoderInput, seq: usize) -> EncoderInput {
    if seq <= input.seq {
        return input;
    }
    let extra = seq - input.seq;
    let widen = |v: &[i64], fill: i64| -> Vec<i64> {
        v.chunks(input.seq.max(1)).flat_map(|row| std::iter::repeat_n(fill, extra).chain(row.iter().copied())).collect()
    };
    let mask = input
        .attention_mask
        .chunks(input.seq.max(1))
        .flat_map(|row| std::iter::repeat_n(0.0, extra).chain(row.iter().copied()))
        .collect();
    EncoderInput {
        batch: input.batch,
        seq,
        input_ids: widen(&input.input_ids, PAD as i64),
        attention_mask: mask,
        item_pos: widen(&input.item_pos, 0),
        item_slot: widen(&input.item_slot, 0),
        lengths: input.lengths,
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
    use crate::data::SemanticIndex;

    #[test]
    fn left_padding_keeps_rows_right_aligned() {
        let index = SemanticIndex::from_codes(&[vec![0, 1], vec![1, 0], vec![2, 2]]);
        let items = ItemTokens::from_index(&index).unwrap();
        let short = items.encoder_input(&[&[0], &[1, 2]]);
        let wide = left_pad(short.clone(), 9);
        assert_eq!(wide.seq, 9);
        for r in 0..2 {
            assert_eq!(&wide.input_ids[r * 9 + 4..r * 9 + 9], &short.input_ids[r * 5..r * 5 + 5]);
            assert!(wide.input_ids[r * 9..r * 9 + 4].iter().all(|&t| t == PAD as i64));
            assert_eq!(&wide.attention_mask[r * 9 + 4..r * 9 + 9], &short.attention_mask[r * 5..r * 5 + 5]);
            assert_eq!(&wide.item_slot[r * 9 + 4..r * 9 + 9], &short.item_slot[r * 5..r * 5 + 5]);
        }
        assert_eq!(left_pad(short.clone(), 3), short);
    }

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
