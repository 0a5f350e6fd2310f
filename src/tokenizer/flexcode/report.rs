//! What a FlexCode run reports: `metrics.json` (codebook use per level of each codebook,
//! collisions, the CF/semantic split per popularity bucket and for head vs tail),
//! `train_log.jsonl` (one line an epoch), `cf_share.csv` (per item: raw id, dense id, training
//! count, a_i, k_i) and `cf_share.png` (a_i against log(1 + count)).
//!
//! Buckets (ours, SPEC section 1 asks for the rule to be reported): items sorted by training
//! count ascending (ties by dense id) and cut into 5 equal parts by rank, `q1` the rarest;
//! head = the top 20% by count (ceil(0.2 n) items, same order), tail = the rest.

use std::path::Path;

use serde::Serialize;

use super::ids::FlexIds;
use super::train::FlexCodeResult;
use crate::artifact::{write_bytes, write_json, write_jsonl, WriteError};
use crate::data::idmap::IdMap;
use crate::tokenizer::collisions::CollisionReport;
use crate::tokenizer::config::TokenizerConfig;
use crate::tokenizer::metrics::{level_usage, LevelUsage};

/// The split of a group of items between the codebooks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitStats {
    /// `q1` .. `q5` (rarest to most popular), `head` or `tail`.
    pub name: String,
    /// Items in the group.
    pub items: usize,
    /// Smallest training count in the group.
    pub min_count: u32,
    /// Largest training count in the group.
    pub max_count: u32,
    /// Mean CF share a.
    pub mean_cf_share: f64,
    /// Mean number of CF tokens k.
    pub mean_cf_tokens: f64,
    /// `cf_tokens_histogram[k]`: items with k CF tokens, k = 0..=L.
    pub cf_tokens_histogram: Vec<usize>,
}

/// Everything `metrics.json` records about a FlexCode run.
#[derive(Debug, Clone, Serialize)]
pub struct FlexCodeMetrics {
    /// Always `flexcode`.
    pub kind: String,
    /// Catalogue items.
    pub items: usize,
    /// The token budget L (levels of each codebook).
    pub levels: usize,
    /// Codes per level.
    pub codebook_size: usize,
    /// Where the semantic codes come from: `rqvae` (a semantic RQ-VAE over text embeddings) or
    /// `fixed-index` (`tokenizer.flexcode.semantic_index`; the semantic code use below is then
    /// the index's).
    pub semantic_side: String,
    /// Whether the router set the split (else `fixed_cf_tokens` for every item).
    pub router: bool,
    /// The fixed split, without the router.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_cf_tokens: Option<usize>,
    /// Length of the final IDs (L, plus one when a disambiguation level was added).
    pub id_length: usize,
    /// Collision handling of the mixed IDs.
    pub collisions: CollisionReport,
    /// Semantic codebook use over every item's nearest codes.
    pub semantic_levels: Vec<LevelUsage>,
    /// CF codebook use over every item's nearest codes.
    pub collaborative_levels: Vec<LevelUsage>,
    /// Semantic codebook use over the items whose ID holds that level (after re-assignment).
    pub semantic_levels_in_ids: Vec<LevelUsage>,
    /// CF codebook use over the items whose ID holds that level.
    pub collaborative_levels_in_ids: Vec<LevelUsage>,
    /// The split over the whole catalogue.
    pub all: SplitStats,
    /// The split per popularity quintile, rarest first.
    pub popularity_buckets: Vec<SplitStats>,
    /// Top 20% of items by training count.
    pub head: SplitStats,
    /// The other 80%.
    pub tail: SplitStats,
    /// How the buckets and head/tail were cut.
    pub bucket_rule: String,
    /// Wall-clock seconds of training and ID assignment.
    pub seconds: f64,
}

/// The split of the items `group`.
fn split_stats(name: &str, group: &[usize], ids: &FlexIds, counts: &[u32], levels: usize) -> SplitStats {
    let mut hist = vec![0usize; levels + 1];
    for &i in group {
        hist[ids.cf_tokens[i].min(levels)] += 1;
    }
    let mean = |v: f64| if group.is_empty() { 0.0 } else { v / group.len() as f64 };
    SplitStats {
        name: name.into(),
        items: group.len(),
        min_count: group.iter().map(|&i| counts[i]).min().unwrap_or(0),
        max_count: group.iter().map(|&i| counts[i]).max().unwrap_or(0),
        mean_cf_share: mean(group.iter().map(|&i| ids.cf_share[i] as f64).sum()),
        mean_cf_tokens: mean(group.iter().map(|&i| ids.cf_tokens[i] as f64).sum()),
        cf_tokens_histogram: hist,
    }
}

/// Use of each level of one codebook over the items whose ID holds it.
fn usage_in_ids(ids: &FlexIds, codebook: crate::data::semantic_index::Codebook, levels: usize, k: usize) -> Vec<LevelUsage> {
    (0..levels)
        .map(|level| {
            let codes: Vec<Vec<u32>> = ids
                .index
                .ids
                .iter()
                .filter_map(|id| id.iter().find(|t| t.codebook == codebook && t.level as usize == level).map(|t| vec![t.code]))
                .collect();
            match level_usage(&codes, k).pop() {
                Some(u) => LevelUsage { level, ..u },
                None => LevelUsage { level, used_codes: 0, codebook_size: k, utilisation: 0.0, perplexity: 0.0 },
            }
        })
        .collect()
}

/// Items sorted by training count ascending, ties by dense id.
fn by_count(counts: &[u32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by_key(|&i| (counts[i], i));
    order
}

/// The metrics of a run's IDs.
pub fn flex_metrics(ids: &FlexIds, counts: &[u32], cfg: &TokenizerConfig, fixed_semantic: bool, seconds: f64) -> FlexCodeMetrics {
    use crate::data::semantic_index::Codebook;
    let (n, levels, k) = (counts.len(), cfg.levels, cfg.codebook_size);
    let order = by_count(counts);
    let buckets = (0..5)
        .map(|b| split_stats(&format!("q{}", b + 1), &order[b * n / 5..(b + 1) * n / 5], ids, counts, levels))
        .collect();
    let head_n = (n as f64 * 0.2).ceil() as usize;
    FlexCodeMetrics {
        kind: "flexcode".into(),
        items: n,
        levels,
        codebook_size: k,
        semantic_side: if fixed_semantic { "fixed-index" } else { "rqvae" }.into(),
        router: cfg.flexcode.router,
        fixed_cf_tokens: (!cfg.flexcode.router).then_some(cfg.flexcode.fixed_cf_tokens),
        id_length: ids.index.id_length().unwrap_or(levels),
        collisions: ids.collisions.clone(),
        semantic_levels: level_usage(&ids.sem_codes, k),
        collaborative_levels: level_usage(&ids.cf_codes, k),
        semantic_levels_in_ids: usage_in_ids(ids, Codebook::Semantic, levels, k),
        collaborative_levels_in_ids: usage_in_ids(ids, Codebook::Collaborative, levels, k),
        all: split_stats("all", &order, ids, counts, levels),
        popularity_buckets: buckets,
        head: split_stats("head", &order[n - head_n..], ids, counts, levels),
        tail: split_stats("tail", &order[..n - head_n], ids, counts, levels),
        bucket_rule: "items sorted by training count (ties: dense id); q1..q5 = equal fifths by rank, rarest first; \
                      head = top ceil(20%) by count, tail = the rest"
            .into(),
        seconds,
    }
}

/// `cf_share.csv`: `item,dense_id,count,cf_share,cf_tokens`, one row per item.
fn share_csv(result: &FlexCodeResult, items: &IdMap) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["item", "dense_id", "count", "cf_share", "cf_tokens"])?;
    for (i, (&a, &k)) in result.ids.cf_share.iter().zip(&result.ids.cf_tokens).enumerate() {
        w.write_record([items.raw(i as u32).to_string(), i.to_string(), result.counts[i].to_string(), a.to_string(), k.to_string()])?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// Writes `train_log.jsonl`, `cf_share.csv`, `metrics.json` and `cf_share.png` into `dir`
/// (atomically each), with the raw item ids of `raw_item_ids`. The index file is the caller's.
pub fn write_report(dir: &Path, result: &FlexCodeResult, raw_item_ids: &IdMap) -> Result<(), WriteError> {
    let at = |name: &str| dir.join(name);
    let io = |name: &str, e: std::io::Error| WriteError { path: at(name), source: e };
    if raw_item_ids.len() != result.counts.len() {
        let msg = format!("{} raw item ids for {} items", raw_item_ids.len(), result.counts.len());
        return Err(io("cf_share.csv", std::io::Error::new(std::io::ErrorKind::InvalidInput, msg)));
    }
    write_jsonl(&at("train_log.jsonl"), &result.log)?;
    let csv = share_csv(result, raw_item_ids).map_err(|e| io("cf_share.csv", std::io::Error::other(e)))?;
    write_bytes(&at("cf_share.csv"), &csv)?;
    write_json(&at("metrics.json"), &result.metrics)?;
    let points: Vec<(f64, f64)> =
        result.counts.iter().zip(&result.ids.cf_share).map(|(&c, &a)| ((c as f64).ln_1p(), a as f64)).collect();
    let title = format!("FlexCode CF share a_i ({} items, L = {})", result.counts.len(), result.metrics.levels);
    crate::plot::scatter(&points, &title, "log(1 + training count)", "CF share a_i", Some((0.0, 1.0)), &at("cf_share.png"))
        .map_err(|e| io("cf_share.png", e))
}
