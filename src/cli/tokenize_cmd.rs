//! `sidrec tokenize`: item embeddings -> collision-free semantic IDs.
//!
//! Trains the configured tokenizer (RQ-VAE or residual k-means) on the item embeddings (or,
//! for the synthetic dataset, its item features), assigns every item a unique ID, and writes
//! into the run folder: `<dataset>.index.json` (LC-Rec/LETTER format), `tokenizer.safetensors`
//! with `tokenizer.json` (architecture and settings), `metrics.json` and, for the RQ-VAE, the
//! per-epoch log `train_log.jsonl`. With `tokenizer.import` it instead reads an existing index
//! file and makes it collision-free.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::tensor::{Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};

use super::config::RunConfig;
use super::run::{expand_home, prepare, run_dir, write_id_maps, Prepared};
use crate::data::{Embeddings, SemanticIndex};
use crate::tokenizer::train::{train_rqvae, EpochMetrics, TrainOptions};
use crate::tokenizer::{
    assign_ids, fix_imported, level_usage, save, CollisionOptions, CollisionReport, KMeansConfig, ResidualKMeansConfig, RqKMeans,
    RqVaeConfig, Tokenizer, TokenizerConfig, TokenizerKind, TokenizerMetrics,
};

/// What `tokenizer.json` records beside the weights.
#[derive(Debug, serde::Serialize)]
struct TokenizerInfo<'a> {
    arch: crate::tokenizer::TokenizerArch,
    settings: &'a TokenizerConfig,
    seed: u64,
    dataset: &'a str,
    items: usize,
    embeddings: String,
}

/// The index file name for a dataset: `<name>.index.json`, the name made file-safe.
fn index_name(dataset: &str) -> String {
    let safe: String = dataset.chars().map(|c| if c.is_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    format!("{}.index.json", if safe.is_empty() { "items" } else { &safe })
}

/// The item vectors to tokenize: the configured file, or the synthetic dataset's features.
pub(super) fn item_vectors(cfg: &RunConfig, p: &Prepared) -> Result<(Embeddings, String)> {
    let t = &cfg.tokenizer;
    match (&t.embeddings, &p.synthetic) {
        (Some(path), _) => {
            let path = expand_home(&path.to_string_lossy());
            let emb = Embeddings::load(&path, t.embeddings_key.as_deref())?;
            emb.check_rows(&path, p.ds.num_items())?;
            Ok((emb, path.display().to_string()))
        }
        (None, Some(syn)) => Ok((syn.features_for(&p.ds), "synthetic item features".into())),
        (None, None) => bail!(
            "no item embeddings given: pass --embeddings FILE (.npy or .safetensors, one row per item; \
             `sidrec embed` writes one) or set tokenizer.embeddings"
        ),
    }
}

/// Writes the JSON-lines training log atomically.
fn write_log(path: &Path, log: &[EpochMetrics]) -> Result<()> {
    crate::artifact::write_jsonl(path, log)?;
    Ok(())
}

fn train_options(t: &TokenizerConfig, seed: u64) -> TrainOptions {
    let sinkhorn = (t.sinkhorn_epsilon, t.sinkhorn_iters);
    TrainOptions {
        epochs: t.epochs,
        batch_size: t.batch_size,
        lr: t.lr,
        weight_decay: t.weight_decay,
        beta: t.beta,
        kmeans_iters: t.kmeans_iters,
        balanced_kmeans: t.balanced_kmeans.then_some(sinkhorn),
        sinkhorn: t.sinkhorn.then_some(sinkhorn),
        reset_dead_codes: t.reset_dead_codes,
        eval_every: t.eval_every,
        encode_batch: t.encode_batch,
        seed,
    }
}

/// Trains the RQ-VAE with a progress bar, rewriting the log file at every evaluation.
fn train_with_progress(x: Tensor<2>, t: &TokenizerConfig, seed: u64, log_path: &Path) -> Result<Tokenizer> {
    let arch = RqVaeConfig::new(x.dims()[1])
        .with_hidden(t.hidden.clone())
        .with_code_dim(t.code_dim)
        .with_levels(t.levels)
        .with_codebook_size(t.codebook_size)
        .with_seed(seed);
    let bar = ProgressBar::new(t.epochs as u64).with_style(
        ProgressStyle::with_template("rq-vae {bar:40} epoch {pos}/{len}, {msg}, eta {eta}").expect("valid template"),
    );
    bar.set_message("k-means initialisation");
    let mut log = Vec::new();
    let mut write_error = None;
    let trained = train_rqvae(x, &arch, &train_options(t, seed), |m| {
        bar.set_position(m.epoch as u64);
        let resets: usize = m.reset_codes.iter().sum();
        bar.set_message(format!("loss {:.5} (recon {:.5}, quant {:.5})", m.loss, m.recon_loss, m.quant_loss));
        log.push(m.clone());
        if let Some(e) = &m.eval {
            let used: Vec<String> = e.levels.iter().map(|l| l.used_codes.to_string()).collect();
            let text = format!(
                "epoch {:>5}: loss {:.5} recon {:.5} quant {:.5} | used codes {} | collision rate {:.4} | codes re-seeded {resets}",
                m.epoch,
                m.loss,
                m.recon_loss,
                m.quant_loss,
                used.join("/"),
                e.collision_rate
            );
            // Printed also when stderr is not a terminal (where the bar itself is hidden).
            bar.suspend(|| eprintln!("{text}"));
            if let Err(err) = write_log(log_path, &log) {
                write_error.get_or_insert(err);
            }
        }
    });
    bar.finish_and_clear();
    if let Some(e) = write_error {
        return Err(e);
    }
    write_log(log_path, &trained.log)?;
    Ok(Tokenizer::RqVae(trained.model))
}

/// Imports an index file and makes it collision-free.
fn import(cfg: &RunConfig, p: &Prepared, path: &Path, started: Instant) -> Result<()> {
    let path = expand_home(&path.to_string_lossy());
    let (mut index, report) = SemanticIndex::read(&path, &p.ds.items)?;
    let Some(len) = index.id_length() else {
        bail!("{}: IDs have different lengths; sidrec needs one length for every item", path.display());
    };
    if report.extra_entries > 0 {
        eprintln!("note: {} entries of {} are not in the dataset and were skipped", report.extra_entries, path.display());
    }
    let codes: Vec<Vec<u32>> = index.ids.iter().map(|id| id.iter().map(|t| t.code).collect()).collect();
    let size = codes.iter().flatten().max().map_or(1, |&c| c as usize + 1);
    let collisions = fix_imported(&mut index).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let dir = run_dir(cfg, "tokenize")?;
    write_id_maps(&p.ds, &dir)?;
    let out = dir.join(index_name(&p.ds.name));
    index.write(&out, &p.ds.items)?;
    let metrics = TokenizerMetrics {
        kind: "import".into(),
        items: p.ds.num_items(),
        levels: level_usage(&codes, size),
        recon_mse: None,
        id_length: index.id_length().unwrap_or(len),
        collisions,
        device: "none".into(),
        seconds: started.elapsed().as_secs_f64(),
    };
    crate::artifact::write_json(&dir.join("metrics.json"), &metrics)?;
    summary(&metrics, &out);
    Ok(())
}

/// Prints what a tokenizer run produced.
pub fn summary(m: &TokenizerMetrics, index: &Path) {
    let used: Vec<String> = m.levels.iter().map(|l| format!("{}/{}", l.used_codes, l.codebook_size)).collect();
    let perplexity: Vec<String> = m.levels.iter().map(|l| format!("{:.1}", l.perplexity)).collect();
    println!("{} items, {} tokenizer, {:.1}s", m.items, m.kind, m.seconds);
    println!("used codes per level: {} (perplexity {})", used.join(", "), perplexity.join(", "));
    if let Some(r) = m.recon_mse {
        println!("reconstruction MSE: {r:.6}");
    }
    println!("{}", collision_line(&m.collisions, m.id_length, "levels"));
    println!("wrote {}", index.display());
}

/// The summary line of what collision handling did, for IDs of `id_length` `unit`s.
pub(super) fn collision_line(c: &CollisionReport, id_length: usize, unit: &str) -> String {
    format!(
        "collision rate: {:.4} raw ({} items), {:.4} after {} Sinkhorn round(s), {} final; IDs have {id_length} {unit}{}",
        c.rate_before,
        c.colliding_items_before,
        c.rate_after_sinkhorn,
        c.sinkhorn_rounds,
        c.rate_final,
        if c.disambiguation_level { " (disambiguation level added)" } else { "" }
    )
}

/// Runs `sidrec tokenize`.
pub fn run(cfg: &RunConfig) -> Result<()> {
    let started = Instant::now();
    let p = prepare(cfg)?;
    if let Some(path) = &cfg.tokenizer.import {
        return import(cfg, &p, path, started);
    }
    let device = cfg.run.device.init()?;
    // The item vectors are read and checked before the run folder is made, so that a bad
    // embedding file leaves no output behind.
    let vectors = if cfg.tokenizer.kind == TokenizerKind::Flexcode {
        check_flexcode_inputs(cfg, &p)?;
        None
    } else {
        Some(item_vectors(cfg, &p)?)
    };
    let dir = run_dir(cfg, "tokenize")?;
    write_id_maps(&p.ds, &dir)?;
    tokenize_items_with(cfg, &p, &dir, &device, vectors)?;
    Ok(())
}

/// Reads and checks FlexCode's given input files (the semantic embeddings, or the fixed
/// semantic index when `tokenizer.flexcode.semantic_index` is set, and, when named, the CF
/// embeddings), so that a bad file is refused before any output is written.
fn check_flexcode_inputs(cfg: &RunConfig, p: &Prepared) -> Result<()> {
    if super::flexcode_cmd::fixed_semantic_codes(cfg, p)?.is_none() {
        item_vectors(cfg, p)?;
    }
    let f = &cfg.tokenizer.flexcode;
    if let Some(path) = &f.cf_embeddings {
        let path = expand_home(&path.to_string_lossy());
        let path = if path.is_dir() { crate::train::sasrec_task::embedding_paths(&path).0 } else { path };
        let key = if path.extension().is_some_and(|e| e == "safetensors") { f.cf_embeddings_key.as_deref() } else { None };
        Embeddings::load(&path, key)?.check_rows(&path, p.ds.num_items())?;
    }
    Ok(())
}

/// Trains the configured tokenizer on the items of `p`, writes into `dir` the index file, the
/// tokenizer, its description and its metrics, and prints a summary. Returns the
/// collision-free IDs and the index file's path. `sidrec train` calls this when no index is
/// given.
pub fn tokenize_items(cfg: &RunConfig, p: &Prepared, dir: &Path, device: &burn::tensor::Device) -> Result<(SemanticIndex, std::path::PathBuf)> {
    tokenize_items_with(cfg, p, dir, device, None)
}

/// [`tokenize_items`] with the item vectors already read (`None`: read them here).
fn tokenize_items_with(
    cfg: &RunConfig,
    p: &Prepared,
    dir: &Path,
    device: &burn::tensor::Device,
    vectors: Option<(Embeddings, String)>,
) -> Result<(SemanticIndex, std::path::PathBuf)> {
    if cfg.tokenizer.kind == TokenizerKind::Flexcode {
        return super::flexcode_cmd::tokenize_flexcode(cfg, p, dir, device, &index_name(&p.ds.name));
    }
    let started = Instant::now();
    let t = &cfg.tokenizer;
    let (emb, source) = match vectors {
        Some(v) => v,
        None => item_vectors(cfg, p)?,
    };
    let seed = t.seed.unwrap_or(cfg.run.seed);
    let x = Tensor::<2>::from_data(TensorData::new(emb.data.clone(), [emb.rows, emb.dim]), device);
    let tokenizer = match t.kind {
        TokenizerKind::Rqvae => train_with_progress(x.clone(), t, seed, &dir.join("train_log.jsonl"))?,
        TokenizerKind::Rqkmeans => {
            let bar = ProgressBar::new_spinner().with_message("residual k-means");
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            let balanced = t.balanced_kmeans.then_some((t.sinkhorn_epsilon, t.sinkhorn_iters));
            let kcfg = ResidualKMeansConfig {
                levels: t.levels,
                kmeans: KMeansConfig { k: t.codebook_size, iters: t.kmeans_iters, balanced, seed },
            };
            let tok = Tokenizer::RqKMeans(RqKMeans::fit(x.clone(), &kcfg));
            bar.finish_and_clear();
            tok
        }
        TokenizerKind::Flexcode => unreachable!("FlexCode returned above"),
    };
    // The IDs are computed with the tokenizer as a reload would build it (bit-identical codes).
    let tokenizer = tokenizer.canonical(device);
    let collide = CollisionOptions { rounds: t.collision_rounds, epsilon: t.sinkhorn_epsilon, iters: t.sinkhorn_iters };
    let (index, collisions) = assign_ids(&tokenizer, x.clone(), t.encode_batch, collide);
    let levels: Vec<Vec<u32>> =
        index.ids.iter().map(|id| id[..t.levels].iter().map(|tok| tok.code).collect()).collect();
    let metrics = TokenizerMetrics {
        kind: t.kind.to_string(),
        items: p.ds.num_items(),
        levels: level_usage(&levels, t.codebook_size),
        recon_mse: Some(tokenizer.reconstruction_mse(x, t.encode_batch)),
        id_length: index.id_length().context("IDs of one length")?,
        collisions,
        device: cfg.run.device.to_string(),
        seconds: started.elapsed().as_secs_f64(),
    };
    let out = dir.join(index_name(&p.ds.name));
    index.write(&out, &p.ds.items)?;
    save(&tokenizer, &dir.join("tokenizer.safetensors"))?;
    let info = TokenizerInfo {
        arch: tokenizer.arch(),
        settings: t,
        seed,
        dataset: &p.ds.name,
        items: p.ds.num_items(),
        embeddings: source,
    };
    crate::artifact::write_json(&dir.join("tokenizer.json"), &info)?;
    crate::artifact::write_json(&dir.join("metrics.json"), &metrics)?;
    summary(&metrics, &out);
    Ok((index, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_are_file_safe() {
        assert_eq!(index_name("ml-1m"), "ml-1m.index.json");
        assert_eq!(index_name("Beauty"), "Beauty.index.json");
        assert_eq!(index_name("a/b c"), "a_b_c.index.json");
        assert_eq!(index_name(""), "items.index.json");
    }
}
