//! FlexCode's item IDs: item i gets k_i = round(a_i L) CF tokens (CF levels 1..k_i, uppercase
//! letters) followed by L - k_i semantic tokens (semantic levels 1..L-k_i), or the fixed split
//! without the router; then the IDs are made collision-free (SPEC sections 2 and 5).
//!
//! Collisions: two IDs can only be equal when their items have the same k, so the items are
//! handled per k. Within each k, colliding items are re-assigned at the ID's last token (the
//! deepest level it uses of its codebook: semantic level L-k, or CF level L when k = L) with
//! group-restricted Sinkhorn on the residual entering that level, as
//! [`crate::tokenizer::collisions`] does for single-codebook IDs; whatever still collides gets
//! [`SemanticIndex::add_disambiguation_level`] (the next level of the last token's codebook).
//! The report's `sinkhorn_rounds` is the most rounds any k needed. With a fixed semantic index
//! the semantic codes are the index's and are never re-assigned: a colliding class whose last
//! token is semantic goes straight to the disambiguation level.

use burn::tensor::{Int, Tensor, TensorData};

use super::model::{FlexCode, SemanticData, SemanticSide};
use super::train::TrainData;
use crate::data::semantic_index::{CodeToken, SemanticIndex};
use crate::tokenizer::collisions::{sinkhorn_rounds, CollisionOptions, CollisionReport};
use crate::tokenizer::config::TokenizerConfig;
use crate::tokenizer::encode::{codes_to_host, encode_in_batches, map_rows, Tokenizer};
use crate::tokenizer::rqvae::RqVae;

/// The final IDs and how they were split.
#[derive(Debug, Clone, PartialEq)]
pub struct FlexIds {
    /// Collision-free IDs in dense item order.
    pub index: SemanticIndex,
    /// a_i, the router's CF share (k / L for a fixed split).
    pub cf_share: Vec<f32>,
    /// k_i, the CF tokens of the ID (before any disambiguation token).
    pub cf_tokens: Vec<usize>,
    /// `[items][levels]` nearest codes of the semantic RQ-VAE (all levels, before re-assignment),
    /// or the fixed index's first L codes.
    pub sem_codes: Vec<Vec<u32>>,
    /// `[items][levels]` nearest codes of the CF RQ-VAE.
    pub cf_codes: Vec<Vec<u32>>,
    /// Collision handling.
    pub collisions: CollisionReport,
}

/// `rq` rebuilt from its host weights as a saved and reloaded tokenizer is, so that the codes
/// are bit for bit those a reload gives (see [`Tokenizer::canonical`]).
fn canonical(rq: &RqVae, device: &burn::tensor::Device) -> RqVae {
    match Tokenizer::RqVae(rq.clone()).canonical(device) {
        Tokenizer::RqVae(m) => m,
        Tokenizer::RqKMeans(_) => unreachable!("an RQ-VAE stays an RQ-VAE"),
    }
}

/// The number of CF tokens of a share: round(a L), within 0..=L.
pub fn cf_tokens_of(a: f32, levels: usize) -> usize {
    ((a * levels as f32).round().max(0.0) as usize).min(levels)
}

/// The ID of an item with `k` CF tokens: CF codes of levels 1..k, then semantic codes of levels
/// 1..L-k.
pub fn mixed_id(cf_codes: &[u32], sem_codes: &[u32], k: usize) -> Vec<CodeToken> {
    let levels = sem_codes.len();
    let cf = cf_codes[..k].iter().enumerate().map(|(l, &c)| CodeToken::cf(l as u8, c));
    let sem = sem_codes[..levels - k].iter().enumerate().map(|(l, &c)| CodeToken::sem(l as u8, c));
    cf.chain(sem).collect()
}

fn colliding(groups: &[Vec<u32>]) -> usize {
    groups.iter().map(Vec::len).sum()
}

/// Encodes every item with both (canonical) RQ-VAEs, splits its ID by the router (or the fixed
/// split), and makes the IDs collision-free. `model` is on the plain device of `data`.
pub(crate) fn assign_flex_ids(model: &FlexCode, data: &TrainData, cfg: &TokenizerConfig) -> Result<FlexIds, String> {
    let device = data.x_sem.device();
    let (levels, batch, f) = (cfg.levels, cfg.encode_batch, &cfg.flexcode);
    let sem = model.sem.rqvae().map(|rq| canonical(rq, &device));
    let cf = canonical(&model.cf, &device);
    let (z_sem, sem_codes) = match (&model.sem, &sem, &data.x_sem) {
        (_, Some(sem), SemanticData::Embeddings(x)) => {
            let z = map_rows(x.clone(), batch, |b| sem.encoder.forward(b));
            let codes = codes_to_host(encode_in_batches(z.clone(), batch, |b| sem.quantizer.encode(b)).codes);
            (z, codes)
        }
        (SemanticSide::Fixed(t), None, SemanticData::Codes(c)) => (t.latent(c.clone()), codes_to_host(c.clone())),
        _ => return Err("the semantic input does not match the tokenizer's semantic side (text embeddings for a semantic RQ-VAE, codes for a fixed index)".into()),
    };
    let z_cf = map_rows(data.x_cf.clone(), batch, |b| cf.encoder.forward(b));
    let cf_codes = codes_to_host(encode_in_batches(z_cf.clone(), batch, |b| cf.quantizer.encode(b)).codes);
    let n = sem_codes.len();
    let (cf_share, cf_tokens): (Vec<f32>, Vec<usize>) = if f.router {
        let input = super::model::router_input(data.stats.clone(), model.disagreement(z_sem.clone(), z_cf.clone()));
        let a: Vec<f32> = model
            .router
            .forward(input, f.router_temperature)
            .into_data()
            .try_into_vec_as()
            .map_err(|e| format!("reading the CF shares back: {e:?}"))?;
        let k = a.iter().map(|&a| cf_tokens_of(a, levels)).collect();
        (a, k)
    } else {
        (vec![f.fixed_cf_tokens as f32 / levels as f32; n], vec![f.fixed_cf_tokens; n])
    };
    let mut index =
        SemanticIndex { ids: (0..n).map(|i| mixed_id(&cf_codes[i], &sem_codes[i], cf_tokens[i])).collect() };
    let before = index.collisions();
    let rate_before = index.collision_rate();
    let opts = CollisionOptions { rounds: cfg.collision_rounds, epsilon: cfg.sinkhorn_epsilon, iters: cfg.sinkhorn_iters };
    let mut rounds = 0;
    for k in 0..=levels {
        if opts.rounds == 0 || !before.iter().any(|g| cf_tokens[g[0] as usize] == k) {
            continue;
        }
        let class: Vec<usize> = (0..n).filter(|&i| cf_tokens[i] == k).collect();
        // The ID's last token: semantic level L-k (1-based), or CF level L when k = L. Fixed
        // semantic codes are kept as they are (the disambiguation level separates them).
        let (rq, z, level) = match &sem {
            Some(sem) if k < levels => (sem, &z_sem, levels - k - 1),
            None if k < levels => continue,
            _ => (&cf, &z_cf, levels - 1),
        };
        let idx: Vec<i64> = class.iter().map(|&i| i as i64).collect();
        let idx = Tensor::<1, Int>::from_ints(TensorData::new(idx, [class.len()]), &device);
        let residual = rq.quantizer.level_inputs(z.clone().select(0, idx)).swap_remove(level);
        let codebook = rq.quantizer.codebooks[level].val();
        let mut codes: Vec<Vec<u32>> = class.iter().map(|&i| index.ids[i].iter().map(|t| t.code).collect()).collect();
        rounds = rounds.max(sinkhorn_rounds(&mut codes, &residual, &codebook, opts));
        for (&i, c) in class.iter().zip(codes) {
            let last = index.ids[i].last_mut().expect("IDs have L >= 1 tokens");
            last.code = *c.last().expect("IDs have L >= 1 tokens");
        }
    }
    let after = index.collisions();
    let mut collisions = CollisionReport {
        rate_before,
        colliding_items_before: colliding(&before),
        sinkhorn_rounds: rounds,
        rate_after_sinkhorn: index.collision_rate(),
        colliding_items_after_sinkhorn: colliding(&after),
        largest_group_after_sinkhorn: after.iter().map(Vec::len).max().unwrap_or(0),
        disambiguation_level: false,
        rate_final: 0.0,
    };
    collisions.disambiguation_level = index.add_disambiguation_level()?;
    collisions.rate_final = index.collision_rate();
    Ok(FlexIds { index, cf_share, cf_tokens, sem_codes, cf_codes, collisions })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::semantic_index::check_level_order;

    #[test]
    fn mixed_ids_put_cf_levels_first_and_keep_each_codebook_in_order() {
        let cf = [7, 8, 9];
        let sem = [1, 2, 3];
        assert_eq!(mixed_id(&cf, &sem, 0), vec![CodeToken::sem(0, 1), CodeToken::sem(1, 2), CodeToken::sem(2, 3)]);
        assert_eq!(mixed_id(&cf, &sem, 2), vec![CodeToken::cf(0, 7), CodeToken::cf(1, 8), CodeToken::sem(0, 1)]);
        assert_eq!(mixed_id(&cf, &sem, 3), vec![CodeToken::cf(0, 7), CodeToken::cf(1, 8), CodeToken::cf(2, 9)]);
        for k in 0..=3 {
            check_level_order(&mixed_id(&cf, &sem, k)).unwrap();
        }
        assert_eq!((cf_tokens_of(0.0, 4), cf_tokens_of(0.3, 4), cf_tokens_of(0.49, 4), cf_tokens_of(1.0, 4)), (0, 1, 2, 4));
    }
}
