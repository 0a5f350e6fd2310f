//! `sidrec recommend`: the top-K items for one or many histories with a trained generator or
//! SASRec, in the dataset's own item ids, as JSON.
//!
//! Histories come from `--history ID ...` or a file (`--histories FILE`: one history per line,
//! oldest first; item ids separated by tabs when the line has a tab, so that ids may contain
//! spaces or commas (MovieLens-1M's ids are titles), otherwise by spaces or commas; blank lines
//! and lines starting with `#` are skipped). Only the checkpoint is needed, not the dataset.

use std::path::Path;

use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use serde::Serialize;

use super::config::RunConfig;
use super::train_cmd::fixed_shapes;
use crate::decode::Trie;
use crate::eval::{GenerativeRanker, SasRecScorer};
use crate::train::{checkpoint, sasrec_task};

/// One history's recommendations.
#[derive(Debug, Serialize)]
pub struct Recommendation {
    /// The history as given (raw ids, oldest first).
    pub history: Vec<String>,
    /// Best first.
    pub items: Vec<Scored>,
}

/// One recommended item.
#[derive(Debug, Serialize)]
pub struct Scored {
    /// The dataset's own item id.
    pub item: String,
    /// A generator's sum of the log-probabilities of the item's tokens; SASRec's dot product.
    pub score: f32,
    /// The model's probability of the item: `exp(score)` (generating its ID) for a
    /// generator, the softmax of the scores over the catalogue for SASRec.
    pub probability: f32,
}

/// Reads histories from `path`: one per line, ids split on tabs when the line has one, else on
/// whitespace or commas.
pub fn read_histories(path: &Path) -> Result<Vec<(usize, Vec<String>)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let ids: Vec<String> = if line.contains('\t') {
            line.split('\t').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
        } else {
            line.split(|c: char| c.is_whitespace() || c == ',').filter(|s| !s.is_empty()).map(String::from).collect()
        };
        if ids.is_empty() {
            bail!("{} line {}: an empty history (only separators: {line:?})", path.display(), i + 1);
        }
        out.push((i + 1, ids));
    }
    if out.is_empty() {
        bail!("{}: no histories (one per line, item ids separated by spaces or commas)", path.display());
    }
    Ok(out)
}

/// One history's top `k` as (dense item, score, probability), for every history in `dense`.
type Lists = Vec<Vec<(u32, f32, f32)>>;

/// The generator of `ckpt`'s top `k` items by constrained beam search.
fn generator_top_k(cfg: &RunConfig, ckpt: &Path, device: &Device, dense: &[Vec<u32>], k: usize) -> Result<Lists> {
    let ck = checkpoint::load(ckpt, device)?;
    let items = ck.item_tokens()?;
    let trie = Trie::new(&items, true, device)?;
    let pad_to = if fixed_shapes(cfg, device) { items.full_encoder_length(ck.spec.max_len) } else { 0 };
    let ranker = GenerativeRanker {
        model: &ck.model,
        items: &items,
        trie: &trie,
        device: device.clone(),
        beam: cfg.eval.beam_size.max(k),
        length_penalty: cfg.eval.length_penalty,
        pad_to,
        name: ck.spec.model.kind.to_string(),
    };
    let mut out = Vec::with_capacity(dense.len());
    for chunk in dense.chunks(cfg.eval.batch_size) {
        let hs: Vec<&[u32]> = chunk.iter().map(Vec::as_slice).collect();
        out.extend(ranker.rank(&hs, k).into_iter().map(|r| r.into_iter().map(|(i, s)| (i, s, s.exp())).collect()));
    }
    Ok(out)
}

/// SASRec's top `k` items of the whole catalogue, by score.
fn sasrec_top_k(cfg: &RunConfig, ckpt: &Path, device: &Device, dense: &[Vec<u32>], k: usize) -> Result<Lists> {
    let ck = sasrec_task::load(ckpt, device)?;
    let pad_to = if fixed_shapes(cfg, device) { ck.model.max_len() } else { 0 };
    let scorer = SasRecScorer { model: &ck.model, device: device.clone(), pad_to, name: "sasrec".into(), exclude_seen: cfg.eval.exclude_seen };
    let mut out = Vec::with_capacity(dense.len());
    for chunk in dense.chunks(cfg.eval.batch_size) {
        let hs: Vec<&[u32]> = chunk.iter().map(Vec::as_slice).collect();
        out.extend(scorer.top_k(&hs, k));
    }
    Ok(out)
}

/// Runs `sidrec recommend` with a generator's or SASRec's checkpoint.
pub fn run(cfg: &RunConfig, ckpt: &Path, history: &[String], histories: Option<&Path>, top_k: usize) -> Result<()> {
    if top_k == 0 {
        bail!("--top-k must be at least 1");
    }
    let rows: Vec<(String, Vec<String>)> = match (histories, history.is_empty()) {
        (Some(_), false) => bail!("give either --history or --histories, not both"),
        (None, true) => bail!("no history given: pass --history ID [ID ...] or --histories FILE"),
        (Some(path), true) => {
            read_histories(path)?.into_iter().map(|(line, h)| (format!("{} line {line}", path.display()), h)).collect()
        }
        (None, false) => vec![("--history".to_string(), history.to_vec())],
    };
    let device = cfg.run.device.init()?;
    let parts = checkpoint::read_parts(ckpt)?;
    let mut dense: Vec<Vec<u32>> = Vec::with_capacity(rows.len());
    for (origin, h) in &rows {
        let ids = h
            .iter()
            .map(|raw| parts.items.dense(raw).with_context(|| format!("{origin}: unknown item id {raw:?} (not in the checkpoint's catalogue)")))
            .collect::<Result<Vec<u32>>>()?;
        let start = ids.len().saturating_sub(parts.spec.max_len);
        dense.push(ids[start..].to_vec());
    }
    let lists = if parts.spec.model.kind.is_generator() {
        generator_top_k(cfg, ckpt, &device, &dense, top_k)?
    } else {
        sasrec_top_k(cfg, ckpt, &device, &dense, top_k)?
    };
    let out: Vec<Recommendation> = rows
        .iter()
        .zip(lists)
        .map(|((_, raw), list)| Recommendation {
            history: raw.clone(),
            items: list.into_iter().map(|(i, score, probability)| Scored { item: parts.items.raw(i).to_string(), score, probability }).collect(),
        })
        .collect();
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_files_skip_comments_and_name_their_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.txt");
        std::fs::write(&p, "# users\n1 2 3\n\n4,5 6\nTitanic (1997)\tHeat, The (1995)\n").unwrap();
        let h = read_histories(&p).unwrap();
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(h, vec![(2, v(&["1", "2", "3"])), (4, v(&["4", "5", "6"])), (5, v(&["Titanic (1997)", "Heat, The (1995)"]))]);
        std::fs::write(&p, "# nothing\n").unwrap();
        assert!(read_histories(&p).unwrap_err().to_string().contains("no histories"));
        std::fs::write(&p, "1 2\n , ,\n").unwrap();
        let err = read_histories(&p).unwrap_err().to_string();
        assert!(err.contains("h.txt line 2: an empty history"), "{err}");
    }
}
