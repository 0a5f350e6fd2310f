//! `sidrec tokenize` with `tokenizer.kind = "flexcode"` (SPEC section 5): the dual-codebook
//! tokenizer over the item text embeddings and the collaborative (CF) embeddings. With
//! `tokenizer.flexcode.semantic_index` the semantic codes are instead a ready-made index's (no
//! text embeddings are read; see [`crate::tokenizer::flexcode::fixed`]).
//!
//! The CF embeddings are `tokenizer.flexcode.cf_embeddings` (a matrix file, or a SASRec run
//! folder); without it a SASRec model is trained first on the training split into
//! `<tokenizer folder>/sasrec/` and its item table is used. The router's statistics and the
//! transitions come from the training split only (`data::item_stats`). Writes into the
//! tokenizer folder the mixed index `<dataset>.index.json` (uppercase letters = CF tokens),
//! `cf_share.csv`, `train_log.jsonl`, `metrics.json`, `cf_share.png`, `tokenizer.json` and the
//! whole tokenizer (`semantic.safetensors`, `collaborative.safetensors` and
//! `flexcode.safetensors`: see [`crate::tokenizer::flexcode::io`]).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::{Device, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};

use super::config::RunConfig;
use super::run::{expand_home, Prepared};
use crate::data::{training_transitions, Embeddings, ItemStats};
use crate::model::GeneratorKind;
use crate::tokenizer::flexcode::{
    read_semantic_codes, save_flexcode, train_flexcode, write_report, FlexCodeInputs, FlexCodeMetrics, SemanticInput,
};
use crate::tokenizer::TokenizerConfig;
use crate::train::sasrec_task::embedding_paths;
use crate::train::TrainConfig;

/// What `tokenizer.json` records for a FlexCode run.
#[derive(Debug, serde::Serialize)]
struct FlexCodeInfo<'a> {
    kind: &'static str,
    settings: &'a TokenizerConfig,
    seed: u64,
    dataset: &'a str,
    items: usize,
    embeddings: String,
    cf_embeddings: String,
}

/// The SASRec run that makes CF embeddings when none are given: `[model.sasrec]` with the
/// `tokenizer.flexcode.sasrec_*` training settings, early stopping on the validation loss.
fn sasrec_config(cfg: &RunConfig, dir: &Path) -> RunConfig {
    let f = &cfg.tokenizer.flexcode;
    let mut c = cfg.clone();
    c.model.kind = GeneratorKind::Sasrec;
    c.run.out_dir = Some(dir.to_path_buf());
    c.train = TrainConfig {
        epochs: f.sasrec_epochs,
        batch_size: 128,
        lr: f.sasrec_lr,
        weight_decay: 0.0,
        warmup_fraction: 0.0,
        grad_clip: 0.0,
        patience: f.sasrec_patience,
        fixed_shapes: cfg.train.fixed_shapes,
        ..TrainConfig::default()
    };
    c
}

/// `p` without each user's last two training items (for `router_holdout`): its own
/// leave-one-out split then trains on `items[..len - 4]` and keeps the held-out transition
/// `items[len - 4] -> items[len - 3]` as its test target.
fn without_last_training_items(cfg: &RunConfig, p: &Prepared) -> Prepared {
    let mut ds = p.ds.clone();
    for s in ds.sequences.iter_mut() {
        s.truncate(s.len().saturating_sub(2));
    }
    if let Some(times) = ds.times.as_mut() {
        for t in times.iter_mut() {
            t.truncate(t.len().saturating_sub(2));
        }
    }
    let split = crate::data::Split::leave_one_out(&ds, cfg.data.max_len);
    let pop = crate::data::Popularity::from_training(&ds, cfg.data.head_fraction);
    Prepared { ds, split, pop, synthetic: None }
}

/// The held-out transitions of `router_holdout`: per user, the last transition of the training
/// part (`items[len - 4] -> items[len - 3]`), which the holdout SASRec never trains on.
fn held_out_transitions(p: &Prepared) -> Vec<(u32, u32)> {
    crate::data::Split::train_items(&p.ds).filter(|t| t.len() >= 2).map(|t| (t[t.len() - 2], t[t.len() - 1])).collect()
}

/// The CF embeddings and where they come from: the configured file or SASRec run folder, or a
/// SASRec model trained now into `<dir>/sasrec/` (`<dir>/sasrec-holdout/` with
/// `router_holdout`, on [`without_last_training_items`]).
pub fn cf_embeddings(cfg: &RunConfig, p: &Prepared, dir: &Path, device: &Device) -> Result<(Embeddings, String)> {
    let f = &cfg.tokenizer.flexcode;
    let path = match &f.cf_embeddings {
        Some(path) => {
            let path = expand_home(&path.to_string_lossy());
            if path.is_dir() { embedding_paths(&path).0 } else { path }
        }
        None if f.router_holdout => {
            let what = "SASRec without each user's last two training items";
            sasrec_embeddings(cfg, &without_last_training_items(cfg, p), &dir.join("sasrec-holdout"), device, what)?
        }
        None => sasrec_embeddings(cfg, p, &dir.join("sasrec"), device, "SASRec first (no tokenizer.flexcode.cf_embeddings given)")?,
    };
    let key = if path.extension().is_some_and(|e| e == "safetensors") { f.cf_embeddings_key.as_deref() } else { None };
    let emb = Embeddings::load(&path, key)?;
    emb.check_rows(&path, p.ds.num_items())?;
    Ok((emb, path.display().to_string()))
}

/// The item embeddings of a SASRec run in `sdir`, trained on `p` first unless it is there.
fn sasrec_embeddings(cfg: &RunConfig, p: &Prepared, sdir: &Path, device: &Device, what: &str) -> Result<PathBuf> {
    let (npy, _) = embedding_paths(sdir);
    if !npy.is_file() {
        eprintln!("CF embeddings: training {what} ({})", sdir.display());
        std::fs::create_dir_all(sdir).with_context(|| format!("{}: cannot create", sdir.display()))?;
        let scfg = sasrec_config(cfg, sdir);
        crate::artifact::write_bytes(&sdir.join("config.toml"), scfg.to_toml().as_bytes())?;
        super::sasrec_cmd::train(&scfg, p, sdir, device)?;
    }
    Ok(npy)
}

/// The fixed semantic codes of `tokenizer.flexcode.semantic_index` (every item's first
/// `tokenizer.levels` codes) and where they come from, or `None` when it is not set. Errors name
/// the file.
pub fn fixed_semantic_codes(cfg: &RunConfig, p: &Prepared) -> Result<Option<(Vec<Vec<u32>>, String)>> {
    let Some(path) = &cfg.tokenizer.flexcode.semantic_index else { return Ok(None) };
    let path = expand_home(&path.to_string_lossy());
    let t = &cfg.tokenizer;
    let codes = read_semantic_codes(&path, &p.ds.items, t.levels, t.codebook_size).map_err(|e| anyhow::anyhow!(e))?;
    Ok(Some((codes, format!("fixed semantic index {}", path.display()))))
}

/// The semantic side's input: the fixed index's codes, or the item text embeddings.
fn semantic_input(cfg: &RunConfig, p: &Prepared, device: &Device) -> Result<(SemanticInput, String)> {
    if let Some((codes, source)) = fixed_semantic_codes(cfg, p)? {
        return Ok((SemanticInput::Codes(codes), source));
    }
    let (sem, source) = super::tokenize_cmd::item_vectors(cfg, p)?;
    Ok((SemanticInput::Embeddings(tensor(&sem, device)), source))
}

fn tensor(e: &Embeddings, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(e.data.clone(), [e.rows, e.dim]), device)
}

/// Prints what a FlexCode run produced.
fn summary(m: &FlexCodeMetrics, index: &Path) {
    println!("{} items, flexcode tokenizer (budget {} tokens), {:.1}s", m.items, m.levels, m.seconds);
    let used = |levels: &[crate::tokenizer::LevelUsage]| {
        levels.iter().map(|l| format!("{}/{}", l.used_codes, l.codebook_size)).collect::<Vec<_>>().join(", ")
    };
    println!("used codes per level: semantic {}; collaborative {}", used(&m.semantic_levels), used(&m.collaborative_levels));
    println!(
        "CF share (mean a, mean CF tokens): all {:.3} / {:.2}, head {:.3} / {:.2}, tail {:.3} / {:.2} ({})",
        m.all.mean_cf_share,
        m.all.mean_cf_tokens,
        m.head.mean_cf_share,
        m.head.mean_cf_tokens,
        m.tail.mean_cf_share,
        m.tail.mean_cf_tokens,
        m.bucket_rule
    );
    println!("{}", super::tokenize_cmd::collision_line(&m.collisions, m.id_length, "tokens"));
    println!("wrote {}", index.display());
}

/// Trains FlexCode on the items of `p` and writes its outputs into `dir`; returns the mixed,
/// collision-free index and the index file's path.
pub fn tokenize_flexcode(
    cfg: &RunConfig,
    p: &Prepared,
    dir: &Path,
    device: &Device,
    index_file: &str,
) -> Result<(crate::data::SemanticIndex, PathBuf)> {
    let started = Instant::now();
    let (x_sem, sem_source) = semantic_input(cfg, p, device)?;
    let (cf, cf_source) = cf_embeddings(cfg, p, dir, device)?;
    let stats = ItemStats::from_training(&p.ds);
    let inputs = FlexCodeInputs {
        x_sem,
        x_cf: tensor(&cf, device),
        stats: stats.features(),
        counts: stats.counts.clone(),
        transitions: if cfg.tokenizer.flexcode.router_holdout { held_out_transitions(p) } else { training_transitions(&p.ds) },
    };
    let seed = cfg.tokenizer.seed.unwrap_or(cfg.run.seed);
    let t = TokenizerConfig { seed: Some(seed), ..cfg.tokenizer.clone() };
    let bar = ProgressBar::new(t.epochs as u64).with_style(
        ProgressStyle::with_template("flexcode {bar:40} epoch {pos}/{len}, {msg}, eta {eta}").expect("valid template"),
    );
    bar.set_message("k-means initialisation");
    let every = t.eval_every.max(1);
    let result = train_flexcode(&inputs, &t, device, |l| {
        bar.set_position(l.epoch as u64);
        bar.set_message(format!("loss {:.4}, mean CF share {:.3}", l.total, l.mean_cf_share));
        if l.epoch % every == 0 || l.epoch == t.epochs {
            let text = format!(
                "epoch {:>4}: total {:.4} | semantic recon {:.4} quant {:.4} | CF recon {:.4} quant {:.4} | align {:.4} transition {:.4} balance {:.5} smooth {:.6} | mean a {:.3} tau {:.3}",
                l.epoch, l.total, l.sem_recon, l.sem_quant, l.cf_recon, l.cf_quant, l.align, l.transition, l.balance, l.smooth, l.mean_cf_share, l.tau
            );
            bar.suspend(|| eprintln!("{text}"));
        }
    })
    .map_err(|e| anyhow::anyhow!("flexcode: {e}"))?;
    bar.finish_and_clear();
    let out = dir.join(index_file);
    result.ids.index.write(&out, &p.ds.items)?;
    write_report(dir, &result, &p.ds.items).map_err(|e| anyhow::anyhow!("{e}"))?;
    save_flexcode(&result.model, dir)?;
    let info = FlexCodeInfo {
        kind: "flexcode",
        settings: &t,
        seed,
        dataset: &p.ds.name,
        items: p.ds.num_items(),
        embeddings: sem_source,
        cf_embeddings: cf_source,
    };
    crate::artifact::write_json(&dir.join("tokenizer.json"), &info)?;
    let mut metrics = result.metrics.clone();
    metrics.seconds = started.elapsed().as_secs_f64();
    crate::artifact::write_json(&dir.join("metrics.json"), &metrics)?;
    summary(&metrics, &out);
    Ok((result.ids.index, out))
}

/// When `index` (read from `path`) was written by a FlexCode tokenizer, i.e. its folder holds a
/// `tokenizer.json` of kind `flexcode`, checks that it has the geometry FlexCode gives: every ID
/// has the same length, the token budget L of that run (plus one disambiguation token when
/// the run needed one). An index edited or mixed up with another run's then stops with the
/// item and the lengths, instead of training a generator on IDs the tokenizer never made.
/// Other mixed indexes (IDs of any lengths, see README "File formats") are not checked here.
pub fn check_flexcode_index(path: &Path, index: &crate::data::SemanticIndex, items: &crate::data::IdMap) -> Result<()> {
    let Some(dir) = path.parent() else { return Ok(()) };
    let info = dir.join("tokenizer.json");
    let Ok(bytes) = std::fs::read(&info) else { return Ok(()) };
    let v: serde_json::Value = serde_json::from_slice(&bytes).with_context(|| format!("{}: not JSON", info.display()))?;
    if v["kind"] != "flexcode" {
        return Ok(());
    }
    let levels = v["settings"]["levels"]
        .as_u64()
        .with_context(|| format!("{}: a FlexCode tokenizer record without settings.levels", info.display()))? as usize;
    // The length most IDs have, then the first item that differs from it.
    let mut lengths = std::collections::BTreeMap::new();
    for id in &index.ids {
        *lengths.entry(id.len()).or_insert(0usize) += 1;
    }
    let Some((&len, _)) = lengths.iter().max_by_key(|&(&l, &n)| (n, std::cmp::Reverse(l))) else { return Ok(()) };
    if len != levels && len != levels + 1 {
        anyhow::bail!(
            "{}: its IDs have {len} tokens, but the FlexCode tokenizer beside it ({}) gives every item L = {levels} tokens (plus at most one disambiguation token)",
            path.display(),
            info.display()
        );
    }
    if let Some(i) = index.ids.iter().position(|id| id.len() != len) {
        anyhow::bail!(
            "{}: item {:?} has an ID of {} tokens, the others {len}; a FlexCode index gives every item the same length (L = {levels} from {})",
            path.display(),
            items.raw(i as u32),
            index.ids[i].len(),
            info.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Dataset, DatasetOptions, InteractionLog, Popularity, Split};

    #[test]
    fn the_holdout_sasrec_never_trains_on_the_held_out_transitions() {
        let mut log = InteractionLog::new("t");
        for (u, items) in [("u", vec!["1", "2", "3", "4", "5", "6"]), ("v", vec!["6", "5", "4", "3", "2"])] {
            for (t, i) in items.iter().enumerate() {
                log.push(u, i, t as f64, None);
            }
        }
        let ds = Dataset::from_log(log, &DatasetOptions { k_core: 0, min_rating: None }).unwrap();
        let cfg = RunConfig::default();
        let p = Prepared {
            split: Split::leave_one_out(&ds, 20),
            pop: Popularity::from_training(&ds, 0.2),
            ds,
            synthetic: None,
        };
        let raw = |d: u32| p.ds.items.raw(d).to_string();
        let held: Vec<(String, String)> = held_out_transitions(&p).into_iter().map(|(a, b)| (raw(a), raw(b))).collect();
        // Training parts: u 1..4, v 6 5 4; their last transitions.
        assert_eq!(held, vec![("3".into(), "4".into()), ("5".into(), "4".into())]);
        let h = without_last_training_items(&cfg, &p);
        // The holdout SASRec trains on u 1 2 and v 6 only: no held-out transition is in there.
        let trained: Vec<Vec<String>> = Split::train_items(&h.ds).map(|s| s.iter().map(|&d| raw(d)).collect()).collect();
        assert_eq!(trained, vec![vec!["1".to_string(), "2".into()], vec!["6".to_string()]]);
        assert_eq!(h.ds.items.raw_ids(), p.ds.items.raw_ids(), "the same catalogue, so the embeddings line up");
    }
}
