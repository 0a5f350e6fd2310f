//! Collision-free semantic IDs: Sinkhorn re-assignment of colliding groups at the last level,
//! then an extra disambiguation level for whatever still collides.
//!
//! Reference: `generate_indices.py` of LC-Rec / LETTER / DiscRec (SPEC section 2): items that
//! share all codes are re-assigned at the last level with Sinkhorn restricted to their group,
//! for up to 20 rounds; TIGER and GRID append a code to what remains. Here all groups of a
//! round are solved in one padded, batched Sinkhorn on the device with a single read-back per
//! round, and rounds stop early once a round changes nothing (the procedure is deterministic,
//! so further rounds would repeat it).

use std::collections::HashMap;

use burn::tensor::{Int, Tensor, TensorData};
use serde::Serialize;

use super::encode::Tokenizer;
use super::sinkhorn::{sinkhorn_assign_groups, sq_distances};
use crate::data::SemanticIndex;

/// Largest `groups x group size x codebook size` tensor solved at once.
const MAX_BATCH_ELEMENTS: usize = 1 << 24;

/// How collisions are resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CollisionOptions {
    /// Rounds of Sinkhorn re-assignment (0: go straight to the disambiguation level).
    pub rounds: usize,
    /// Sinkhorn temperature.
    pub epsilon: f64,
    /// Sinkhorn iterations.
    pub iters: usize,
}

/// What collision handling did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CollisionReport {
    /// `1 - distinct IDs / items` of the raw codes.
    pub rate_before: f64,
    /// Items whose raw ID is shared with another item.
    pub colliding_items_before: usize,
    /// Sinkhorn rounds run.
    pub sinkhorn_rounds: usize,
    /// Collision rate after the Sinkhorn rounds.
    pub rate_after_sinkhorn: f64,
    /// Items still colliding after the Sinkhorn rounds.
    pub colliding_items_after_sinkhorn: usize,
    /// Largest group still colliding after the Sinkhorn rounds (its size bounds the extra code).
    pub largest_group_after_sinkhorn: usize,
    /// Whether a disambiguation level was appended.
    pub disambiguation_level: bool,
    /// Collision rate of the final IDs (always 0).
    pub rate_final: f64,
}

fn colliding_items(groups: &[Vec<u32>]) -> usize {
    groups.iter().map(Vec::len).sum()
}

/// Groups of items sharing all codes, ordered by their first item.
fn collision_groups(codes: &[Vec<u32>]) -> Vec<Vec<u32>> {
    let mut groups: HashMap<&[u32], Vec<u32>> = HashMap::new();
    for (i, c) in codes.iter().enumerate() {
        groups.entry(c.as_slice()).or_default().push(i as u32);
    }
    let mut out: Vec<Vec<u32>> = groups.into_values().filter(|g| g.len() > 1).collect();
    out.sort();
    out
}

/// Consecutive groups `start..end` solved together in one padded `[slots, seq, k]` tensor.
/// `slots` and `seq` are powers of two, so that the rounds reuse a few tensor shapes (on wgpu
/// every new shape compiles kernels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Chunk {
    start: usize,
    end: usize,
    seq: usize,
    slots: usize,
}

/// Splits `groups` into chunks whose padded tensor stays under [`MAX_BATCH_ELEMENTS`] (a
/// single group may exceed it).
fn chunks(groups: &[Vec<u32>], k: usize) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < groups.len() {
        let (mut end, mut seq) = (start, 1);
        while end < groups.len() {
            let s = seq.max(groups[end].len().next_power_of_two());
            if end > start && (end + 1 - start).next_power_of_two() * s * k > MAX_BATCH_ELEMENTS {
                break;
            }
            seq = s;
            end += 1;
        }
        out.push(Chunk { start, end, seq, slots: (end - start).next_power_of_two() });
        start = end;
    }
    out
}

/// New last-level codes for every item of `groups` (in order), by Sinkhorn within each group.
fn reassign(groups: &[Vec<u32>], last_residual: &Tensor<2>, codebook: &Tensor<2>, opts: CollisionOptions) -> Vec<u32> {
    let device = last_residual.device();
    let k = codebook.dims()[0];
    let plan = chunks(groups, k);
    let mut results: Vec<Tensor<1, Int>> = Vec::with_capacity(plan.len());
    for c in &plan {
        let chunk = &groups[c.start..c.end];
        // Padding: extra rows repeat the group's first item, extra slots are one-row groups of
        // item 0; their output is dropped below.
        let mut rows: Vec<usize> = chunk.iter().map(Vec::len).collect();
        rows.resize(c.slots, 1);
        let mut idx: Vec<i64> =
            chunk.iter().flat_map(|g| (0..c.seq).map(move |i| *g.get(i).unwrap_or(&g[0]) as i64)).collect();
        idx.resize(c.slots * c.seq, 0);
        let idx = Tensor::<1, Int>::from_ints(TensorData::new(idx, [c.slots * c.seq]), &device);
        let dist = sq_distances(last_residual.clone().select(0, idx), codebook.clone()).reshape([c.slots, c.seq, k]);
        results.push(sinkhorn_assign_groups(dist, &rows, opts.epsilon, opts.iters).reshape([c.slots * c.seq]));
    }
    let flat: Vec<i64> = Tensor::cat(results, 0).into_data().try_into_vec_as().expect("integer codes");
    let mut out = Vec::with_capacity(colliding_items(groups));
    let mut offset = 0;
    for c in &plan {
        for (g, group) in groups[c.start..c.end].iter().enumerate() {
            let at = offset + g * c.seq;
            out.extend(flat[at..at + group.len()].iter().map(|&code| code as u32));
        }
        offset += c.slots * c.seq;
    }
    out
}

/// Re-assigns the last code of colliding items with group-restricted Sinkhorn for up to
/// `opts.rounds` rounds. Returns the number of rounds run.
///
/// # Shapes
/// - last_residual: `[items, dim]`, the residual entering the last level
/// - codebook: `[codebook_size, dim]`, the last level's codebook
pub fn sinkhorn_rounds(codes: &mut [Vec<u32>], last_residual: &Tensor<2>, codebook: &Tensor<2>, opts: CollisionOptions) -> usize {
    let mut rounds = 0;
    while rounds < opts.rounds {
        let groups = collision_groups(codes);
        if groups.is_empty() {
            break;
        }
        rounds += 1;
        let new = reassign(&groups, last_residual, codebook, opts);
        let mut changed = false;
        for (&item, code) in groups.iter().flatten().zip(new) {
            let last = codes[item as usize].last_mut().expect("codes have at least one level");
            changed |= *last != code;
            *last = code;
        }
        if !changed {
            break;
        }
    }
    rounds
}

/// Final, collision-free IDs of every item: encode, Sinkhorn rounds, disambiguation level.
///
/// # Shapes
/// - x: `[items, input_dim]`
pub fn assign_ids(tokenizer: &Tokenizer, x: Tensor<2>, encode_batch: usize, opts: CollisionOptions) -> (SemanticIndex, CollisionReport) {
    let enc = tokenizer.encode(x, encode_batch);
    let mut codes = super::encode::codes_to_host(enc.codes);
    let codebook = tokenizer.quantizer().codebooks.last().expect("at least one level").val();
    let before = collision_groups(&codes);
    let rate_before = super::metrics::collision_rate(&codes);
    let rounds = sinkhorn_rounds(&mut codes, &enc.last_residual, &codebook, opts);
    let after = collision_groups(&codes);
    let mut index = SemanticIndex::from_codes(&codes);
    let mut report = CollisionReport {
        rate_before,
        colliding_items_before: colliding_items(&before),
        sinkhorn_rounds: rounds,
        rate_after_sinkhorn: index.collision_rate(),
        colliding_items_after_sinkhorn: colliding_items(&after),
        largest_group_after_sinkhorn: after.iter().map(Vec::len).max().unwrap_or(0),
        disambiguation_level: false,
        rate_final: 0.0,
    };
    // The codes come from one quantizer (one length) of at most 25 levels (validated config).
    report.disambiguation_level = index.add_disambiguation_level().expect("tokenizer IDs share one length of at most 25 levels");
    report.rate_final = index.collision_rate();
    (index, report)
}

/// Makes an imported index collision-free (no embeddings, so no Sinkhorn: only the
/// disambiguation level). Fails, leaving the index as it was, when colliding IDs have
/// different lengths or leave no letter for the level
/// ([`SemanticIndex::add_disambiguation_level`]).
pub fn fix_imported(index: &mut SemanticIndex) -> Result<CollisionReport, String> {
    let groups = index.collisions();
    let rate = index.collision_rate();
    let disambiguation_level = index.add_disambiguation_level()?;
    Ok(CollisionReport {
        rate_before: rate,
        colliding_items_before: colliding_items(&groups),
        sinkhorn_rounds: 0,
        rate_after_sinkhorn: rate,
        colliding_items_after_sinkhorn: colliding_items(&groups),
        largest_group_after_sinkhorn: groups.iter().map(Vec::len).max().unwrap_or(0),
        disambiguation_level,
        rate_final: index.collision_rate(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::rq_kmeans::RqKMeans;
    use burn::tensor::Device;

    fn tensor(v: &[[f32; 2]], device: &Device) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v.iter().flatten().copied().collect::<Vec<f32>>(), [v.len(), 2]), device)
    }

    #[test]
    fn collision_resolution_yields_unique_ids() {
        let device = Device::flex();
        let c0 = tensor(&[[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]], &device);
        let c1 = tensor(&[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], &device);
        let tok = Tokenizer::RqKMeans(RqKMeans { quantizer: crate::tokenizer::ResidualQuantizer::from_codebooks(vec![c0, c1]) });
        let x = tensor(
            &[
                // Four items with distinct residuals, all nearest to code (0, 0) at level 1.
                [0.3, 0.0],
                [0.0, 0.3],
                [-0.3, 0.0],
                [0.05, 0.05],
                // Unique items.
                [10.0, 1.0],
                [0.0, 11.0],
                // Exact duplicates: no re-assignment can separate them.
                [10.2, 10.1],
                [10.2, 10.1],
                [10.2, 10.1],
            ],
            &device,
        );
        let opts = CollisionOptions { rounds: 20, epsilon: 0.003, iters: 50 };
        let (index, report) = assign_ids(&tok, x.clone(), 4, opts);
        assert_eq!(report.colliding_items_before, 7);
        assert!(report.sinkhorn_rounds >= 1);
        // Sinkhorn separates the four distinct items; the three duplicates remain.
        assert_eq!(report.colliding_items_after_sinkhorn, 3, "{report:?}");
        assert_eq!(report.largest_group_after_sinkhorn, 3);
        assert!(report.disambiguation_level);
        assert!(index.collisions().is_empty());
        assert_eq!(report.rate_final, 0.0);
        assert_eq!(index.id_length(), Some(3));
        let first_two: Vec<(u32, u32)> = index.ids[..4].iter().map(|id| (id[0].code, id[1].code)).collect();
        assert!(first_two.iter().all(|&(a, _)| a == 0));
        let extra: Vec<u32> = index.ids.iter().map(|id| id[2].code).collect();
        assert_eq!(extra, vec![0, 0, 0, 0, 0, 0, 0, 1, 2]);

        // Without Sinkhorn rounds the disambiguation level alone makes the IDs unique.
        let (index, report) = assign_ids(&tok, x, 4, CollisionOptions { rounds: 0, ..opts });
        assert_eq!(report.sinkhorn_rounds, 0);
        assert_eq!(report.colliding_items_after_sinkhorn, 7);
        assert!(index.collisions().is_empty());
    }

    #[test]
    fn chunks_cover_every_group_once() {
        let groups: Vec<Vec<u32>> = (0..50).map(|g| (0..(2 + g % 7)).map(|i| (g * 10 + i) as u32).collect()).collect();
        let plan = chunks(&groups, 1 << 20); // a few padded groups fit a chunk
        assert!(plan.len() > 1);
        assert_eq!(plan[0].start, 0);
        assert_eq!(plan.last().unwrap().end, 50);
        assert!(plan.windows(2).all(|w| w[0].end == w[1].start));
        for c in &plan {
            assert!(c.seq.is_power_of_two() && c.slots.is_power_of_two());
            assert_eq!(c.seq, groups[c.start..c.end].iter().map(Vec::len).max().unwrap().next_power_of_two());
            assert!(c.slots >= c.end - c.start && c.slots < 2 * (c.end - c.start));
            assert!(c.slots * c.seq * (1 << 20) <= MAX_BATCH_ELEMENTS || c.end - c.start == 1);
        }
    }
}
