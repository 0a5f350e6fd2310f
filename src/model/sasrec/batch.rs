//! SASRec's inputs: item sequences left-padded on the host (the last item is always in the
//! last column), with each item's position counted back from the end, the attention mask,
//! and the training targets of every position.
//!
//! Positions count from the most recent item (0 = last), so a row means the same whatever
//! padding its batch has; with every row padded to `max_len` this is the paper's absolute
//! position embedding.

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::{Rng, RngExt};

/// Additive attention bias where a query may not look (finite, so no row is all `-inf`).
pub const MASKED: f32 = -1e9;

/// A batch of histories on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceInput {
    /// Rows.
    pub batch: usize,
    /// Columns (items per row, padding included).
    pub seq: usize,
    /// `[batch * seq]` dense item ids; padding holds 0 (masked out).
    pub items: Vec<i64>,
    /// `[batch * seq]` 1 for an item, 0 for padding.
    pub mask: Vec<f32>,
    /// `[batch * seq]` distance from the row's last item (0 = last); 0 for padding.
    pub positions: Vec<i64>,
}

/// [`SequenceInput`] on a device.
#[derive(Debug, Clone)]
pub struct SequenceBatch {
    /// `[batch, seq]` dense item ids.
    pub items: Tensor<2, Int>,
    /// `[batch, seq]` 1 for an item, 0 for padding.
    pub mask: Tensor<2>,
    /// `[batch, seq]` distance from the last item.
    pub positions: Tensor<2, Int>,
    /// `[batch, 1, seq, seq]` 0 where query `i` may attend key `j` (`j <= i`, `j` an item, or
    /// `j == i`), [`MASKED`] elsewhere.
    pub bias: Tensor<4>,
}

impl SequenceInput {
    /// The last `max_len` items of each row, left-padded to the longest row or to `pad_to`
    /// columns, whichever is more (but at most `max_len`). Empty rows are allowed (all padding).
    pub fn new(rows: &[&[u32]], max_len: usize, pad_to: usize) -> Self {
        let longest = rows.iter().map(|r| r.len().min(max_len)).max().unwrap_or(0);
        let seq = longest.max(pad_to.min(max_len)).max(1);
        let batch = rows.len();
        let mut items = vec![0i64; batch * seq];
        let mut mask = vec![0f32; batch * seq];
        let mut positions = vec![0i64; batch * seq];
        for (b, row) in rows.iter().enumerate() {
            let row = &row[row.len().saturating_sub(max_len)..];
            let start = b * seq + seq - row.len();
            for (j, &item) in row.iter().enumerate() {
                items[start + j] = item as i64;
                mask[start + j] = 1.0;
                positions[start + j] = (row.len() - 1 - j) as i64;
            }
        }
        SequenceInput { batch, seq, items, mask, positions }
    }

    /// The attention bias of [`SequenceBatch::bias`], on the host.
    pub fn attention_bias(&self) -> Vec<f32> {
        let s = self.seq;
        let mut bias = vec![MASKED; self.batch * s * s];
        for b in 0..self.batch {
            for i in 0..s {
                for j in 0..=i {
                    if j == i || self.mask[b * s + j] > 0.0 {
                        bias[(b * s + i) * s + j] = 0.0;
                    }
                }
            }
        }
        bias
    }

    /// The tensors on `device`.
    pub fn to_device(&self, device: &Device) -> SequenceBatch {
        let (b, s) = (self.batch, self.seq);
        let ints = |v: &[i64]| Tensor::<2, Int>::from_ints(TensorData::new(v.to_vec(), [b, s]), device);
        SequenceBatch {
            items: ints(&self.items),
            mask: Tensor::from_data(TensorData::new(self.mask.clone(), [b, s]), device),
            positions: ints(&self.positions),
            bias: Tensor::from_data(TensorData::new(self.attention_bias(), [b, 1, s, s]), device),
        }
    }
}

/// The targets of a training batch: every position whose next item is known.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingTargets {
    /// Flat indices (`row * seq + column`) of the positions that have a target.
    pub positions: Vec<i64>,
    /// The next item at each of those positions.
    pub targets: Vec<i64>,
    /// `negatives` sampled items per position (row-major), for the BCE loss; empty otherwise.
    pub negatives: Vec<i64>,
}

/// A training batch on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingInput {
    /// The inputs: each sequence without its last item.
    pub input: SequenceInput,
    /// What every position predicts.
    pub targets: TrainingTargets,
}

impl TrainingInput {
    /// Rows from training sequences (oldest first, at least two items each): row `b` reads the
    /// last `max_len + 1` items of `sequences[b]`, and position `t` predicts item `t + 1`.
    /// With `negatives > 0`, draws that many items per position from `rng`, uniformly from
    /// the `num_items` items that are not in the row's sequence (any item when the sequence
    /// covers the catalogue).
    pub fn new(sequences: &[&[u32]], max_len: usize, pad_to: usize, num_items: usize, negatives: usize, rng: &mut impl Rng) -> Self {
        let windows: Vec<&[u32]> = sequences.iter().map(|s| &s[s.len().saturating_sub(max_len + 1)..]).collect();
        let inputs: Vec<&[u32]> = windows.iter().map(|w| &w[..w.len().saturating_sub(1)]).collect();
        let input = SequenceInput::new(&inputs, max_len, pad_to);
        let mut t = TrainingTargets { positions: Vec::new(), targets: Vec::new(), negatives: Vec::new() };
        for (b, (w, seq)) in windows.iter().zip(sequences).enumerate() {
            let n = w.len().saturating_sub(1);
            let first = b * input.seq + input.seq - n;
            for j in 0..n {
                t.positions.push((first + j) as i64);
                t.targets.push(w[j + 1] as i64);
                for _ in 0..negatives {
                    t.negatives.push(sample_negative(seq, num_items, rng) as i64);
                }
            }
        }
        TrainingInput { input, targets: t }
    }

    /// Positions with a target.
    pub fn num_targets(&self) -> usize {
        self.targets.targets.len()
    }
}

/// An item not in `seen` (tried a bounded number of times; any item after that).
fn sample_negative(seen: &[u32], num_items: usize, rng: &mut impl Rng) -> u32 {
    let mut item = rng.random_range(0..num_items as u32);
    for _ in 0..64 {
        if !seen.contains(&item) {
            break;
        }
        item = rng.random_range(0..num_items as u32);
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn rows_are_left_padded_with_positions_from_the_end() {
        let x = SequenceInput::new(&[&[5, 6, 7], &[9]], 10, 0);
        assert_eq!((x.batch, x.seq), (2, 3));
        assert_eq!(x.items, vec![5, 6, 7, 0, 0, 9]);
        assert_eq!(x.mask, vec![1., 1., 1., 0., 0., 1.]);
        assert_eq!(x.positions, vec![2, 1, 0, 0, 0, 0]);
        // Truncated to the last max_len items, widened to pad_to.
        let y = SequenceInput::new(&[&[1, 2, 3, 4]], 2, 0);
        assert_eq!(y.items, vec![3, 4]);
        assert_eq!(SequenceInput::new(&[&[1]], 5, 4).seq, 4);
        // Row 1 (one item in column 2): padding queries see only themselves, the item sees itself.
        let bias = x.attention_bias();
        let row1: Vec<f32> = bias[9..18].to_vec();
        assert_eq!(row1, vec![0., MASKED, MASKED, MASKED, 0., MASKED, MASKED, MASKED, 0.]);
        // Row 0: causal.
        assert_eq!(&bias[..9], &[0., MASKED, MASKED, 0., 0., MASKED, 0., 0., 0.]);
    }

    #[test]
    fn every_position_predicts_the_next_item_and_negatives_avoid_the_sequence() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let t = TrainingInput::new(&[&[1, 2, 3, 4], &[7, 8]], 10, 0, 12, 2, &mut rng);
        assert_eq!(t.input.items, vec![1, 2, 3, 0, 0, 7]);
        assert_eq!(t.targets.positions, vec![0, 1, 2, 5]);
        assert_eq!(t.targets.targets, vec![2, 3, 4, 8]);
        assert_eq!(t.targets.negatives.len(), 8);
        for (k, &n) in t.targets.negatives.iter().enumerate() {
            let seq: &[i64] = if k < 6 { &[1, 2, 3, 4] } else { &[7, 8] };
            assert!(!seq.contains(&n) && (0..12).contains(&n), "{n}");
        }
        // A long sequence keeps its last max_len + 1 items: max_len targets.
        let long: Vec<u32> = (0..30).collect();
        let t = TrainingInput::new(&[&long], 5, 0, 40, 0, &mut rng);
        assert_eq!(t.input.items, vec![24, 25, 26, 27, 28]);
        assert_eq!(t.targets.targets, vec![25, 26, 27, 28, 29]);
        assert!(t.targets.negatives.is_empty());
    }
}
