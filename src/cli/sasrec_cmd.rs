//! SASRec's side of `sidrec train`, `eval` and `recommend`: training through the shared loop,
//! the export of the trained item embedding table (`item_embeddings.npy` and
//! `item_embeddings.safetensors`, dense-id rows, ready for `sidrec tokenize --embeddings` and
//! for FlexCode), full-ranking evaluation and top-k recommendations on the device.
//!
//! SASRec reads histories of up to `model.sasrec.max_len` items (its own window, recorded in
//! the checkpoint), not `data.max_len`, which is the generators' window.

use std::path::Path;

use anyhow::Result;
use burn::module::Module;
use burn::tensor::Device;

use super::config::RunConfig;
use super::eval_cmd::baseline_results;
use super::run::Prepared;
use super::train_cmd::{check_resumable, check_same_spec, fixed_shapes};
use crate::data::{Embeddings, IdMap, Part, Split};
use crate::eval::{evaluate_scores, EvalResult, SasRecScorer};
use crate::model::SasRec;
use crate::train::checkpoint::GeneratorSpec;
use crate::train::sasrec_task::{self, embedding_paths, SasRecInputs};
use crate::train::trainer::{checkpoint_dirs, run, LoopSettings};
use crate::train::TrainOutcome;

/// The tensor name of the item table in `item_embeddings.safetensors`.
pub const EMBEDDINGS_KEY: &str = "item_embeddings";

/// The split with SASRec's history window.
fn split_for(p: &Prepared, max_len: usize) -> Split {
    Split { max_len, ..p.split.clone() }
}

/// Stops a SASRec run whose largest tensors (with `batch` examples a device) would not fit the
/// device's largest buffer ([`crate::train::limits`]).
pub fn check_limits(cfg: &RunConfig, p: &Prepared, inputs: &SasRecInputs, batch: usize, device: &Device) -> Result<()> {
    let c = &cfg.model.sasrec;
    let examples = crate::train::TrainTask::examples(inputs).len().max(1);
    let targets: usize = Split::train_items(&p.ds).map(|s| s.len().saturating_sub(1).min(c.max_len)).sum();
    let tensors = crate::train::limits::sasrec(c, p.ds.num_items(), batch, targets as f64 / examples as f64, cfg.eval.batch_size);
    crate::train::limits::check(device, &tensors).map_err(anyhow::Error::msg)
}

/// Trains SASRec in `dir` (or resumes it), then exports the best epoch's item embeddings.
pub fn train(cfg: &RunConfig, p: &Prepared, dir: &Path, device: &Device) -> Result<TrainOutcome> {
    let (last, _) = checkpoint_dirs(dir);
    check_resumable(&last, p, cfg)?;
    let c = &cfg.model.sasrec;
    let spec = GeneratorSpec {
        model: cfg.model.clone(),
        level_sizes: Vec::new(),
        cf_level_sizes: Vec::new(),
        max_id_len: None,
        max_len: c.max_len,
        dataset: p.ds.name.clone(),
    };
    check_same_spec(&last, &spec)?;
    let split = split_for(p, c.max_len);
    let inputs = SasRecInputs::new(&p.ds, &split, &p.ds.items, spec, &cfg.train, fixed_shapes(cfg, device));
    check_limits(cfg, p, &inputs, cfg.train.batch_size, device)?;
    eprintln!(
        "sasrec ({} loss), {} parameters, {} items, {} users, {} training targets, device {}",
        c.loss,
        crate::seed::init_seeded(0, |host| c.init(p.ds.num_items(), host)).num_params(),
        p.ds.num_items(),
        crate::train::TrainTask::examples(&inputs).len(),
        Split::train_items(&p.ds).map(|s| s.len().saturating_sub(1).min(c.max_len)).sum::<usize>(),
        cfg.run.device
    );
    let settings = LoopSettings { cfg: &cfg.train, seed: cfg.run.seed, device: device.clone(), dir: dir.to_path_buf() };
    let outcome = run(&inputs, &settings, |_| true)?;
    let best = sasrec_task::load(&outcome.best, device)?;
    let (npy, st) = export_embeddings(&best.model, &best.parts.items, dir)?;
    eprintln!("item embeddings of epoch {}: {} and {}", best.parts.state.best_epoch, npy.display(), st.display());
    Ok(outcome)
}

/// Writes `model`'s item table into `dir` as `item_embeddings.npy` and `.safetensors`.
pub fn export_embeddings(model: &SasRec, items: &IdMap, dir: &Path) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    let table = model.item_table();
    let [rows, dim] = table.dims();
    anyhow::ensure!(rows == items.len(), "the item table has {rows} rows for {} items", items.len());
    let data: Vec<f32> = table.into_data().convert::<f32>().try_to_vec().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let emb = Embeddings::new(rows, dim, data);
    let (npy, st) = embedding_paths(dir);
    emb.save_npy(&npy)?;
    emb.save_safetensors(&st, EMBEDDINGS_KEY)?;
    Ok((npy, st))
}

/// Evaluates the SASRec checkpoint `ckpt` on validation and test by full ranking, followed by
/// the baselines.
pub fn evaluate(cfg: &RunConfig, p: &Prepared, ckpt: &Path, device: &Device) -> Result<Vec<EvalResult>> {
    let ck = sasrec_task::load(ckpt, device)?;
    super::eval_cmd::check_catalogue(&ck.parts.dir, &ck.parts.items, p, cfg)?;
    let split = split_for(p, ck.parts.spec.max_len);
    let pad_to = if fixed_shapes(cfg, device) { ck.model.max_len() } else { 0 };
    let seen = if cfg.eval.exclude_seen { ", seen items excluded" } else { "" };
    let name = format!("sasrec-{} (epoch {}{seen})", ck.parts.spec.model.sasrec.loss, ck.parts.state.best_epoch);
    let scorer = SasRecScorer { model: &ck.model, device: device.clone(), pad_to, name, exclude_seen: cfg.eval.exclude_seen };
    let mut out = Vec::new();
    for part in [Part::Valid, Part::Test] {
        out.push(evaluate_scores(&scorer, &p.ds, &split, part, &p.pop, &cfg.eval.ks, cfg.eval.batch_size));
    }
    out.extend(baseline_results(p, cfg));
    Ok(out)
}
