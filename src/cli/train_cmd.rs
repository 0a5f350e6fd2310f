//! `sidrec train`: for a generator, semantic IDs (an index file, or tokenized here) and then
//! the generator; for SASRec, the model over item ids (`sasrec_cmd`). Either is trained to
//! early stopping with checkpoints, then the best checkpoint is evaluated on validation and
//! test beside the baselines.
//!
//! An interrupted run continues where it stopped when started again with the same config and
//! output folder (`--restart` starts over instead).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::tensor::Device;

use super::config::RunConfig;
use super::eval_cmd::{evaluate_checkpoint, print_results};
use super::run::{expand_home, prepare, run_dir, write_id_maps, Prepared};
use super::tokenize_cmd::tokenize_items;
use crate::data::{Codebook, SemanticIndex};
use crate::kernels::Capabilities;
use crate::model::{GeneratorKind, ItemTokens, ModelConfig, TokenVocab, VocabError};
use crate::tokenizer::fix_imported;
use crate::train::checkpoint::{self, GeneratorSpec};
use crate::train::trainer::checkpoint_dirs;
use crate::train::{train, TrainInputs, TrainOutcome};

/// The semantic IDs of the run and the file they come from: the configured index file
/// (collisions fixed), or a tokenizer trained now into `<dir>/tokenizer/`.
pub fn semantic_ids(cfg: &RunConfig, p: &Prepared, dir: &Path, device: &Device) -> Result<(SemanticIndex, PathBuf)> {
    match &cfg.model.index {
        Some(path) => {
            let path = expand_home(&path.to_string_lossy());
            let (mut index, report) = SemanticIndex::read(&path, &p.ds.items)?;
            super::flexcode_cmd::check_flexcode_index(&path, &index, &p.ds.items)?;
            if report.extra_entries > 0 {
                eprintln!("note: {} entries of {} are not in the dataset and were skipped", report.extra_entries, path.display());
            }
            let fixed = fix_imported(&mut index).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            if fixed.colliding_items_before > 0 {
                eprintln!(
                    "note: {} items of {} share their ID; a disambiguation level makes them unique",
                    fixed.colliding_items_before,
                    path.display()
                );
            }
            eprintln!("semantic IDs: {} ({} items)", path.display(), index.ids.len());
            Ok((index, path))
        }
        None => {
            eprintln!("semantic IDs: no model.index given, training the {} tokenizer first", cfg.tokenizer.kind);
            let tdir = dir.join("tokenizer");
            std::fs::create_dir_all(&tdir).with_context(|| format!("{}: cannot create", tdir.display()))?;
            let (index, out) = tokenize_items(cfg, p, &tdir, device)?;
            Ok((index, out))
        }
    }
}

/// The catalogue's token sequences in the declared vocabulary: `tokenizer.codebook_size` codes
/// at every level of each codebook the index uses (its disambiguation level too). Token ids,
/// the parameter count and checkpoint compatibility then follow from the settings, never from
/// which codes a tokenizer run happened to use.
pub fn declared_items(cfg: &RunConfig, index: &SemanticIndex, source: &Path) -> Result<ItemTokens> {
    let size = cfg.tokenizer.codebook_size;
    let levels = |codebook: Codebook| {
        index.ids.iter().map(|id| id.iter().filter(|t| t.codebook == codebook).count()).max().unwrap_or(0)
    };
    let vocab = TokenVocab::with_collaborative(vec![size; levels(Codebook::Semantic)], vec![size; levels(Codebook::Collaborative)]);
    ItemTokens::new(vocab, index).map_err(|e| match e {
        VocabError::OutOfRange { .. } => {
            anyhow::anyhow!(
                "{}: {e}; tokenizer.codebook_size ({size}) declares the codes of every level: set it to the index's codebook size",
                source.display()
            )
        }
        e => anyhow::anyhow!("{}: {e}", source.display()),
    })
}

/// The model's shape for this run.
pub fn spec_for(cfg: &RunConfig, p: &Prepared, items: &ItemTokens) -> GeneratorSpec {
    GeneratorSpec::generator(cfg.model.clone(), items, cfg.data.max_len, p.ds.name.clone())
}

/// Whether batches get one fixed shape: the config's choice, else what the device wants
/// ([`Capabilities::fixed_shapes`]: on for wgpu devices).
pub fn fixed_shapes(cfg: &RunConfig, device: &Device) -> bool {
    cfg.train.fixed_shapes.unwrap_or(Capabilities::of(device).fixed_shapes)
}

/// Reads the model spec of checkpoint folder `ck`.
fn saved_spec(ck: &Path) -> Result<GeneratorSpec> {
    let path = ck.join("generator.json");
    serde_json::from_slice(&std::fs::read(&path)?).with_context(|| format!("{}: unreadable", path.display()))
}

/// Stops a resumed run whose checkpoint in `last` holds another model kind than the config's
/// or was trained on other items than `p`.
pub fn check_resumable(last: &Path, p: &Prepared, cfg: &RunConfig) -> Result<()> {
    if let Some(ck) = checkpoint::verified_existing(last)? {
        let saved = saved_spec(&ck)?;
        if saved.model.kind != cfg.model.kind {
            bail!(
                "{}: the checkpoint holds a {} model, this config trains {}; use --restart or another --out",
                ck.display(),
                saved.model.kind,
                cfg.model.kind
            );
        }
        let items = crate::data::IdMap::load(&ck.join("items.json"))?;
        if items.raw_ids() != p.ds.items.raw_ids() {
            bail!("{}: the checkpoint was trained on other items than {}; use --restart or another --out", ck.display(), cfg.data.dataset);
        }
    }
    Ok(())
}

/// The settings of `m` that shape its model: the index path (a resumed run keeps the IDs of
/// its checkpoint, see [`check_same_index`]) and the sections of other model kinds left out.
fn relevant(m: &ModelConfig) -> ModelConfig {
    let defaults = ModelConfig::default();
    if !m.kind.is_generator() {
        return ModelConfig { kind: m.kind, sasrec: m.sasrec.clone(), ..defaults };
    }
    let discrec = if m.kind == GeneratorKind::Discrec { m.discrec.clone() } else { defaults.discrec.clone() };
    ModelConfig { index: None, sasrec: defaults.sasrec.clone(), discrec, ..m.clone() }
}

/// A resumed run keeps the IDs of its checkpoint (`saved`, read from `saved_path`). Stops when
/// `model.index` names an index with other IDs, e.g. a plain index for a FlexCode run, rather
/// than ignore it silently.
fn check_same_index(cfg: &RunConfig, p: &Prepared, saved: &SemanticIndex, saved_path: &Path) -> Result<()> {
    let Some(path) = &cfg.model.index else { return Ok(()) };
    let path = expand_home(&path.to_string_lossy());
    let (mut given, _) = SemanticIndex::read(&path, &p.ds.items)?;
    fix_imported(&mut given).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if given == *saved {
        return Ok(());
    }
    let ids = |i: &SemanticIndex| {
        if i.has_collaborative() { "FlexCode's mixed IDs (CF and semantic tokens)" } else { "plain semantic IDs" }
    };
    bail!(
        "{}: holds {}, but the run being resumed was trained on {} ({}), and a resumed run keeps its IDs; resume without model.index, or use --restart or another --out",
        path.display(),
        if given.has_collaborative() == saved.has_collaborative() { "other IDs".to_string() } else { ids(&given).to_string() },
        ids(saved),
        saved_path.display()
    )
}

/// Stops a resumed run whose checkpoint in `last` has other model settings than `spec`.
pub fn check_same_spec(last: &Path, spec: &GeneratorSpec) -> Result<()> {
    if let Some(ck) = checkpoint::verified_existing(last)? {
        let saved = saved_spec(&ck)?;
        let geometry = |s: &GeneratorSpec| (s.level_sizes.clone(), s.cf_level_sizes.clone(), s.id_len());
        if saved.model == spec.model && geometry(&saved) != geometry(spec) {
            bail!(
                "{}: the checkpoint's IDs have another geometry than model.index's (semantic levels {:?}, CF levels {:?}, longest ID {} tokens; now {:?}, {:?}, {}); resume with the index it was trained on, or use --restart or another --out",
                ck.display(),
                saved.level_sizes,
                saved.cf_level_sizes,
                saved.id_len(),
                spec.level_sizes,
                spec.cf_level_sizes,
                spec.id_len()
            );
        }
        let (a, b) = (GeneratorSpec { model: relevant(&saved.model), ..saved.clone() }, GeneratorSpec { model: relevant(&spec.model), ..spec.clone() });
        if a != b {
            bail!(
                "{}: the checkpoint has other model settings than this config ({:?} vs {:?}); use --restart or another --out",
                ck.display(),
                a.model,
                b.model
            );
        }
    }
    Ok(())
}

/// Trains TIGER or DiscRec in `dir`.
fn train_generator(cfg: &RunConfig, p: &Prepared, dir: &Path, device: &Device) -> Result<TrainOutcome> {
    let (last, _) = checkpoint_dirs(dir);
    check_resumable(&last, p, cfg)?;
    // A resumed run keeps its IDs: tokenizing again could give different ones.
    let (index, source) = match checkpoint::verified_existing(&last)? {
        Some(ck) => {
            let path = ck.join("items.index.json");
            let index = SemanticIndex::read(&path, &p.ds.items)?.0;
            check_same_index(cfg, p, &index, &path)?;
            (index, path)
        }
        None => semantic_ids(cfg, p, dir, device)?,
    };
    let items = declared_items(cfg, &index, &source)?;
    let spec = spec_for(cfg, p, &items);
    check_same_spec(&last, &spec)?;
    let n_params = crate::seed::try_init_seeded(0, |host| spec.init(host)).map_err(anyhow::Error::msg)?.num_params();
    eprintln!(
        "{} generator, {} parameters, vocabulary {} tokens, {} training examples, device {}",
        spec.model.kind,
        n_params,
        items.vocab().size(),
        p.split.train.len(),
        cfg.run.device
    );
    let inputs = TrainInputs {
        ds: &p.ds,
        split: &p.split,
        index: &index,
        items: &items,
        item_ids: &p.ds.items,
        spec,
        cfg: &cfg.train,
        eval: &cfg.eval,
        pop: &p.pop,
        seed: cfg.run.seed,
        device: device.clone(),
        fixed_shapes: fixed_shapes(cfg, device),
        dir: dir.to_path_buf(),
    };
    Ok(train(&inputs, |_| true)?)
}

/// Runs `sidrec train`; returns the run folder.
pub fn run(cfg: &RunConfig, restart: bool) -> Result<PathBuf> {
    let started = Instant::now();
    let device = cfg.run.device.init()?;
    let p = prepare(cfg)?;
    let dir = run_dir(cfg, "train")?;
    write_id_maps(&p.ds, &dir)?;
    if restart {
        let ck = dir.join("checkpoints");
        if ck.exists() {
            std::fs::remove_dir_all(&ck).with_context(|| format!("{}: cannot remove", ck.display()))?;
        }
    }
    let outcome = if cfg.model.kind.is_generator() {
        train_generator(cfg, &p, &dir, &device)?
    } else {
        super::sasrec_cmd::train(cfg, &p, &dir, &device)?
    };
    if let Some(e) = outcome.resumed_from {
        eprintln!("resumed from the checkpoint of epoch {e}");
    }
    let s = &outcome.state;
    let (what, best) = match cfg.train.early_stopping.as_str() {
        "loss" => ("validation loss".to_string(), s.best_criterion.unwrap_or(f64::NAN)),
        m => (format!("validation {m}"), -s.best_criterion.unwrap_or(f64::NAN)),
    };
    eprintln!(
        "training {} after {} epochs; best {what} {best:.4} at epoch {}",
        if s.stopped_early { "stopped early" } else { "finished" },
        s.epoch,
        s.best_epoch
    );
    let results = evaluate_checkpoint(cfg, &p, &outcome.best, &device, &dir)?;
    print_results(cfg, &p, &results);
    crate::artifact::write_json(&dir.join("metrics.json"), &results)?;
    println!(
        "wrote {} (curves: {}, log: {}) in {:.1}s",
        dir.join("metrics.json").display(),
        dir.join("training.png").display(),
        dir.join("metrics.jsonl").display(),
        started.elapsed().as_secs_f64()
    );
    Ok(dir.to_path_buf())
}
