//! `sidrec eval`: metrics of a trained model (`--checkpoint`: a generator or SASRec) and of
//! the baselines on the validation and test targets, written as JSON.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use burn::tensor::{Device, Tensor};

use super::config::RunConfig;
use super::run::{prepare, run_dir, write_id_maps, Prepared};
use super::train_cmd::fixed_shapes;
use crate::data::{IdMap, Part};
use crate::decode::Trie;
use crate::eval::{evaluate, EvalResult, GenerativeRanker, MostPopular, RandomRanker};
use crate::train::limits::{self, GeneratorRun};
use crate::train::{checkpoint, sasrec_task};

/// Evaluates most-popular and random on validation and test.
pub fn baseline_results(p: &Prepared, cfg: &RunConfig) -> Vec<EvalResult> {
    let mut out = Vec::new();
    for part in [Part::Valid, Part::Test] {
        let ks = &cfg.eval.ks;
        let bs = cfg.eval.batch_size;
        out.push(evaluate(&mut MostPopular::new(&p.pop), &p.ds, &p.split, part, &p.pop, ks, bs));
        let mut random = RandomRanker::new(p.ds.num_items(), cfg.run.seed);
        out.push(evaluate(&mut random, &p.ds, &p.split, part, &p.pop, ks, bs));
    }
    out
}

/// A table of results: one row per model and part, Recall/NDCG at every K, then the head/tail
/// Recall at the largest K.
pub fn table(results: &[EvalResult], ks: &[usize]) -> String {
    let kmax = ks.iter().max().copied().unwrap_or(10);
    let mut s = format!("{:<18} {:<6}", "model", "part");
    for k in ks {
        write!(s, " {:>8} {:>8}", format!("R@{k}"), format!("N@{k}")).ok();
    }
    writeln!(s, " {:>11} {:>11}", format!("head R@{kmax}"), format!("tail R@{kmax}")).ok();
    for r in results {
        write!(s, "{:<18} {:<6}", r.model, r.part).ok();
        let m = &r.metrics;
        for k in ks {
            let g = |name: String| m.all.get(&name).unwrap_or(f64::NAN);
            write!(s, " {:>8.4} {:>8.4}", g(format!("recall@{k}")), g(format!("ndcg@{k}"))).ok();
        }
        let at = format!("recall@{kmax}");
        writeln!(s, " {:>11.4} {:>11.4}", m.head.get(&at).unwrap_or(f64::NAN), m.tail.get(&at).unwrap_or(f64::NAN)).ok();
    }
    s
}

/// Stops when checkpoint `dir` was trained on another catalogue (`items`) than `p`'s.
pub fn check_catalogue(dir: &Path, items: &IdMap, p: &Prepared, cfg: &RunConfig) -> Result<()> {
    if items.raw_ids() != p.ds.items.raw_ids() {
        bail!(
            "{}: the checkpoint was trained on another item catalogue ({} items) than {} ({} items); \
             evaluate with the dataset and data settings it was trained with",
            dir.display(),
            items.len(),
            cfg.data.dataset,
            p.ds.num_items()
        );
    }
    Ok(())
}

/// Evaluates the model saved in `ckpt` on validation and test (full catalogue: beam search for
/// a generator, full ranking for SASRec), followed by the baselines for comparison. For
/// DiscRec, also prints and writes `<out_dir>/gate.json` with the mean gate weight of each
/// branch.
pub fn evaluate_checkpoint(cfg: &RunConfig, p: &Prepared, ckpt: &Path, device: &Device, out_dir: &Path) -> Result<Vec<EvalResult>> {
    let loaded = load_checked(cfg, p, ckpt, device)?;
    evaluate_loaded(cfg, p, loaded, device, out_dir)
}

/// A checkpoint read and checked against the dataset, ready to evaluate.
pub enum Loaded {
    /// A generator, loaded.
    Generator(checkpoint::Checkpoint),
    /// A SASRec checkpoint folder (loaded when evaluated).
    SasRec(PathBuf),
}

/// Reads checkpoint `ckpt` and checks it against `p`: the files against its manifest, the
/// catalogue and the history window (generators: loaded whole, weights and IDs included).
pub fn load_checked(cfg: &RunConfig, p: &Prepared, ckpt: &Path, device: &Device) -> Result<Loaded> {
    if !checkpoint::read_parts(ckpt)?.spec.model.kind.is_generator() {
        return Ok(Loaded::SasRec(ckpt.to_path_buf()));
    }
    let ck = checkpoint::load(ckpt, device)?;
    check_catalogue(&ck.dir, &ck.items, p, cfg)?;
    if ck.spec.max_len != p.split.max_len {
        bail!(
            "{}: the model was trained with a history window of {} items, the config has data.max_len = {}",
            ck.dir.display(),
            ck.spec.max_len,
            p.split.max_len
        );
    }
    ck.item_tokens()?;
    Ok(Loaded::Generator(ck))
}

/// Evaluates a checkpoint read by [`load_checked`] (see [`evaluate_checkpoint`]).
pub fn evaluate_loaded(cfg: &RunConfig, p: &Prepared, loaded: Loaded, device: &Device, out_dir: &Path) -> Result<Vec<EvalResult>> {
    let ck = match loaded {
        Loaded::SasRec(dir) => return super::sasrec_cmd::evaluate(cfg, p, &dir, device),
        Loaded::Generator(ck) => ck,
    };
    let items = ck.item_tokens()?;
    let run = GeneratorRun { model: &ck.spec.model, vocab: items.vocab().size(), max_id_len: items.max_len(), window: p.split.max_len };
    limits::check(device, &run.beam_search(cfg.eval.batch_size, cfg.eval.beam_size)).map_err(anyhow::Error::msg)?;
    let trie = Trie::new(&items, true, device)?;
    let pad_to = if fixed_shapes(cfg, device) { items.full_encoder_length(p.split.max_len) } else { 0 };
    let mut ranker = GenerativeRanker {
        model: &ck.model,
        items: &items,
        trie: &trie,
        device: device.clone(),
        beam: cfg.eval.beam_size,
        length_penalty: cfg.eval.length_penalty,
        pad_to,
        name: format!("{} (epoch {})", ck.spec.model.kind, ck.state.best_epoch),
    };
    let ks = &cfg.eval.ks;
    let bs = cfg.eval.batch_size;
    let mut out = Vec::new();
    for part in [Part::Valid, Part::Test] {
        out.push(evaluate(&mut ranker, &p.ds, &p.split, part, &p.pop, ks, bs));
    }
    out.extend(baseline_results(p, cfg));
    if let Some(g) = gate_weights(&ranker, p, pad_to, bs) {
        println!(
            "DiscRec gate, mean over the encoder tokens of the test histories: semantic {:.3}, collaborative {:.3}",
            g.encoder.semantic, g.encoder.collaborative
        );
        if let Some(d) = &g.decoder {
            println!(
                "DiscRec gate, mean over the decoder inputs of the test targets: semantic {:.3}, collaborative {:.3}",
                d.semantic, d.collaborative
            );
        }
        crate::artifact::write_json(&out_dir.join("gate.json"), &g)?;
    }
    Ok(out)
}

/// The mean weight DiscRec's gate gives each branch in one block.
#[derive(Debug, serde::Serialize)]
pub struct BranchWeights {
    /// Mean semantic-branch weight.
    pub semantic: f64,
    /// Mean collaborative-branch weight (`1 - semantic`).
    pub collaborative: f64,
    /// Tokens averaged over.
    pub tokens: usize,
}

impl BranchWeights {
    fn from_sums(sum: f64, count: f64) -> Self {
        let semantic = sum / count.max(1.0);
        BranchWeights { semantic, collaborative: 1.0 - semantic, tokens: count as usize }
    }
}

/// DiscRec's mean gate weights: the encoder block's over the tokens of the test histories, the
/// decoder block's (absent in the encoder-only ablation) over the teacher-forced decoder inputs
/// `[start, c1..c_L]` of the test targets.
#[derive(Debug, serde::Serialize)]
pub struct GateWeights {
    /// The block in front of the encoder.
    pub encoder: BranchWeights,
    /// The block in front of the decoder.
    pub decoder: Option<BranchWeights>,
}

/// DiscRec's mean gate weights over the test split; `None` for models without a gate.
fn gate_weights(r: &GenerativeRanker, p: &Prepared, pad_to: usize, bs: usize) -> Option<GateWeights> {
    let read = |t: Tensor<1>| -> Option<(f64, f64)> {
        let v: Vec<f32> = t.into_data().try_to_vec::<f32>().ok()?;
        Some((v[0] as f64, v[1] as f64))
    };
    let (mut enc_sum, mut enc_count) = (0f64, 0f64);
    let mut dec: Option<(f64, f64)> = None;
    for chunk in p.split.part(Part::Test).chunks(bs) {
        let hs: Vec<&[u32]> = chunk.iter().map(|&e| p.split.history(&p.ds, e)).collect();
        let enc = r.model.encoder_batch(&r.items.encoder_input_padded(&hs, pad_to), &r.device);
        let (s, c) = read(r.model.encoder_gate_sum(&enc)?)?;
        enc_sum += s;
        enc_count += c;
        let targets: Vec<u32> = chunk.iter().map(|&e| p.split.target(&p.ds, e)).collect();
        let batch = r.items.decoder_input(&targets).to_device(&r.device);
        if let Some(t) = r.model.decoder_gate_sum(&batch) {
            let (s, c) = read(t)?;
            let acc = dec.get_or_insert((0.0, 0.0));
            acc.0 += s;
            acc.1 += c;
        }
    }
    Some(GateWeights {
        encoder: BranchWeights::from_sums(enc_sum, enc_count),
        decoder: dec.map(|(s, c)| BranchWeights::from_sums(s, c)),
    })
}

/// Prints the results table and how head and tail are defined.
pub fn print_results(cfg: &RunConfig, p: &Prepared, results: &[EvalResult]) {
    print!("{}", table(results, &cfg.eval.ks));
    println!(
        "head = top {:.0}% of items by training count ({} items); full-catalogue ranking over {} items",
        cfg.data.head_fraction * 100.0,
        p.pop.num_head(),
        p.ds.num_items()
    );
}

/// Runs `sidrec eval`: the baselines, and the generator of `checkpoint` when given.
pub fn run(cfg: &RunConfig, checkpoint: Option<&Path>) -> Result<()> {
    let p = prepare(cfg)?;
    // The checkpoint is read and checked before the run folder is made or touched, so that a
    // bad one leaves no output behind.
    let loaded = match checkpoint {
        Some(ckpt) => {
            let device = cfg.run.device.init()?;
            let loaded = load_checked(cfg, &p, ckpt, &device)?;
            if let Loaded::SasRec(dir) = &loaded {
                // Loaded once here only to check it (SASRec checkpoints are small).
                let ck = sasrec_task::load(dir, &device)?;
                check_catalogue(&ck.parts.dir, &ck.parts.items, &p, cfg)?;
            }
            Some((loaded, device))
        }
        None => None,
    };
    let dir = run_dir(cfg, "eval")?;
    write_id_maps(&p.ds, &dir)?;
    let results = match loaded {
        Some((loaded, device)) => evaluate_loaded(cfg, &p, loaded, &device, &dir)?,
        None => baseline_results(&p, cfg),
    };
    print_results(cfg, &p, &results);
    crate::artifact::write_json(&dir.join("metrics.json"), &results)?;
    println!("wrote {}", dir.join("metrics.json").display());
    Ok(())
}
