//! `sidrec train`: for a generator, semantic IDs (an index file, or tokenized here) and then
//! the generator; for SASRec, the model over item ids (`sasrec_cmd`). Either is trained to
//! early stopping with checkpoints, then the best checkpoint is evaluated on validation and
//! test beside the baselines.
//!
//! An interrupted run continues where it stopped when started again with the same config and
//! output folder (`--restart` starts over instead).

use std::path::{Path, PathBuf};
use std::time::Instant;

use std::time::Duration;

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::tensor::Device;

use super::config::RunConfig;
use super::eval_cmd::{evaluate_checkpoint, print_results};
use super::run::{expand_home, open_run_dir, prepare, write_id_maps, Prepared};
use super::tokenize_cmd::tokenize_items;
use super::device::{replica_devices, DeviceSpec};
use crate::data::{Codebook, SemanticIndex, Split};
use crate::kernels::Capabilities;
use crate::model::{GeneratorKind, ItemTokens, ModelConfig, TokenVocab, VocabError};
use crate::tokenizer::fix_imported;
use crate::train::checkpoint::{self, GeneratorSpec};
use crate::train::distributed::{Collective, ParallelRef};
use crate::train::generator_task::train_parallel;
use crate::train::sasrec_task::{self, SasRecInputs};
use crate::train::limits::{self, GeneratorRun};
use crate::train::trainer::{checkpoint_dirs, run_parallel, LoopSettings};
use crate::train::{TrainInputs, TrainOutcome};

/// The index file `model.index` names, read against the dataset and its collisions fixed;
/// `None` when the config names none. Writes nothing, so `train` can refuse a bad index before
/// it touches the run folder.
pub fn configured_index(cfg: &RunConfig, p: &Prepared) -> Result<Option<(SemanticIndex, PathBuf)>> {
    let Some(path) = &cfg.model.index else { return Ok(None) };
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
    Ok(Some((index, path)))
}

/// IDs from a tokenizer trained now into `<dir>/tokenizer/`.
fn tokenized_ids(cfg: &RunConfig, p: &Prepared, dir: &Path, device: &Device) -> Result<(SemanticIndex, PathBuf)> {
    eprintln!("semantic IDs: no model.index given, training the {} tokenizer first", cfg.tokenizer.kind);
    let tdir = dir.join("tokenizer");
    std::fs::create_dir_all(&tdir).with_context(|| format!("{}: cannot create", tdir.display()))?;
    tokenize_items(cfg, p, &tdir, device)
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
fn check_same_index(given: Option<&(SemanticIndex, PathBuf)>, saved: &SemanticIndex, saved_path: &Path) -> Result<()> {
    let Some((given, path)) = given else { return Ok(()) };
    if given == saved {
        return Ok(());
    }
    let ids = |i: &SemanticIndex| {
        if i.has_collaborative() { "FlexCode's mixed IDs (CF and semantic tokens)" } else { "plain semantic IDs" }
    };
    bail!(
        "{}: holds {}, but the run being resumed was trained on {} ({}), and a resumed run keeps its IDs; resume without model.index, or use --restart or another --out",
        path.display(),
        if given.has_collaborative() == saved.has_collaborative() { "other IDs".to_string() } else { ids(given).to_string() },
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

/// The semantic IDs of a multi-rank run: rank 0 reads or computes them ([`configured_index`], [`tokenized_ids`], or
/// the checkpoint's), and every other rank receives rank 0's index file (the machines need no
/// shared folder).
fn shared_semantic_ids(
    group: &dyn Collective,
    leader_ids: Option<(SemanticIndex, PathBuf)>,
    p: &Prepared,
) -> Result<(SemanticIndex, PathBuf, Option<tempfile::TempDir>)> {
    let tmp = tempfile::tempdir()?;
    let file = tmp.path().join("rank0.index.json");
    let mut bytes = match &leader_ids {
        Some((index, _)) => {
            index.write(&file, &p.ds.items)?;
            std::fs::read(&file)?
        }
        None => Vec::new(),
    };
    // Rank 0 may be training the tokenizer meanwhile.
    group.broadcast_bytes(&mut bytes, Some(Duration::from_secs(7 * 24 * 3600)))?;
    match leader_ids {
        Some((index, source)) => Ok((index, source, None)),
        None => {
            std::fs::write(&file, &bytes)?;
            let index = SemanticIndex::read(&file, &p.ds.items).with_context(|| format!("{}: the index from rank 0", group.describe()))?.0;
            Ok((index, file, Some(tmp)))
        }
    }
}

/// The IDs of the checkpoint in `last` that a resumed run keeps, after checking that it holds
/// this config's model kind and items and that `model.index` (`given`) names the same IDs;
/// `None` when there is nothing to resume.
fn resumed_ids(cfg: &RunConfig, p: &Prepared, last: &Path, given: Option<&(SemanticIndex, PathBuf)>) -> Result<Option<(SemanticIndex, PathBuf)>> {
    check_resumable(last, p, cfg)?;
    let Some(ck) = checkpoint::verified_existing(last)? else { return Ok(None) };
    let path = ck.join("items.index.json");
    let index = SemanticIndex::read(&path, &p.ds.items)?.0;
    check_same_index(given, &index, &path)?;
    Ok(Some((index, path)))
}

/// Trains TIGER or DiscRec in `dir` (rank 0 alone reads and writes it in a multi-rank run).
/// `given` is the index `model.index` names, read already ([`configured_index`]).
fn train_generator(
    cfg: &RunConfig,
    p: &Prepared,
    dir: &Path,
    devices: &[Device],
    group: Option<&dyn Collective>,
    given: Option<(SemanticIndex, PathBuf)>,
) -> Result<TrainOutcome> {
    let device = &devices[0];
    let leader = group.is_none_or(|g| g.rank() == 0);
    let (last, _) = checkpoint_dirs(dir);
    let leader_ids = if leader {
        // A resumed run keeps its IDs: tokenizing again could give different ones.
        Some(match resumed_ids(cfg, p, &last, given.as_ref())? {
            Some(saved) => saved,
            None => match given {
                Some(given) => {
                    eprintln!("semantic IDs: {} ({} items)", given.1.display(), given.0.ids.len());
                    given
                }
                None => tokenized_ids(cfg, p, dir, device)?,
            },
        })
    } else {
        None
    };
    let (index, source, _tmp) = match group {
        Some(g) => shared_semantic_ids(g, leader_ids, p)?,
        None => {
            let (index, source) = leader_ids.expect("the leader's IDs");
            (index, source, None)
        }
    };
    let items = declared_items(cfg, &index, &source)?;
    let spec = spec_for(cfg, p, &items);
    let run = GeneratorRun { model: &cfg.model, vocab: items.vocab().size(), max_id_len: items.max_len(), window: cfg.data.max_len };
    let per_replica = cfg.train.batch_size.div_ceil(group.map_or(1, |g| g.size()) * devices.len());
    let mut largest = run.training(per_replica);
    largest.extend(run.beam_search(cfg.eval.batch_size, cfg.eval.beam_size));
    limits::check(device, &largest).map_err(anyhow::Error::msg)?;
    if leader {
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
    }
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
    Ok(train_parallel(&inputs, ParallelRef { devices, group }, |_| true)?)
}

/// SASRec over several replicas and/or ranks: `sasrec_cmd::train`'s steps through the
/// data-parallel loop (rank 0 alone exports the item embeddings).
fn train_sasrec_parallel(cfg: &RunConfig, p: &Prepared, dir: &Path, devices: &[Device], group: Option<&dyn Collective>) -> Result<TrainOutcome> {
    let device = &devices[0];
    let leader = group.is_none_or(|g| g.rank() == 0);
    let (last, _) = checkpoint_dirs(dir);
    let c = &cfg.model.sasrec;
    let spec = GeneratorSpec {
        model: cfg.model.clone(),
        level_sizes: Vec::new(),
        cf_level_sizes: Vec::new(),
        max_id_len: None,
        max_len: c.max_len,
        dataset: p.ds.name.clone(),
    };
    if leader {
        check_resumable(&last, p, cfg)?;
        check_same_spec(&last, &spec)?;
        eprintln!("sasrec ({} loss), {} items, {} users, device {}", c.loss, p.ds.num_items(), p.ds.num_users(), cfg.run.device);
    }
    let split = Split { max_len: c.max_len, ..p.split.clone() };
    let inputs = SasRecInputs::new(&p.ds, &split, &p.ds.items, spec, &cfg.train, fixed_shapes(cfg, device));
    let per_replica = cfg.train.batch_size.div_ceil(group.map_or(1, |g| g.size()) * devices.len());
    super::sasrec_cmd::check_limits(cfg, p, &inputs, per_replica, device)?;
    let settings = LoopSettings { cfg: &cfg.train, seed: cfg.run.seed, device: device.clone(), dir: dir.to_path_buf() };
    let outcome = run_parallel(&inputs, &settings, ParallelRef { devices, group }, |_| true)?;
    if leader {
        let best = sasrec_task::load(&outcome.best, device)?;
        let (npy, st) = super::sasrec_cmd::export_embeddings(&best.model, &best.parts.items, dir)?;
        eprintln!("item embeddings of epoch {}: {} and {}", best.parts.state.best_epoch, npy.display(), st.display());
    }
    Ok(outcome)
}

/// The MPI process group of this process, when an MPI launcher started it.
#[cfg(feature = "mpi")]
type Group = crate::train::distributed::mpi::MpiGroup;

/// Joins the MPI job this process belongs to (`None` when started without a launcher).
#[cfg(feature = "mpi")]
fn join_group() -> Result<Option<Group>> {
    Ok(Group::from_env()?)
}

/// Without the `mpi` feature there is no group; a process started by an MPI launcher with
/// several ranks is refused, rather than training the same run once per rank.
#[cfg(not(feature = "mpi"))]
fn join_group() -> Result<Option<std::convert::Infallible>> {
    if let Some(n) = crate::train::distributed::launcher_world_size().filter(|&n| n > 1) {
        bail!(
            "started by an MPI launcher with {n} ranks, but this sidrec was built without MPI: build it with \
             `cargo build --release --features mpi` (needs an MPI library, e.g. apt-get install openmpi-bin libopenmpi-dev libclang-dev)"
        );
    }
    Ok(None)
}

/// Runs `sidrec train`; returns the run folder.
pub fn run(cfg: &RunConfig, restart: bool) -> Result<PathBuf> {
    run_spread(cfg, restart, None)
}

/// Runs `sidrec train` on the replicas of `devices` (`--devices`; default: one) and, when an
/// MPI launcher started this process (and the `mpi` feature is built), as one rank of the job:
/// an error on any rank ends every rank (`MPI_Abort`).
pub fn run_spread(cfg: &RunConfig, restart: bool, devices: Option<&DeviceSpec>) -> Result<PathBuf> {
    let group = join_group()?;
    #[cfg(feature = "mpi")]
    {
        if let Some(g) = &group {
            let indices = match devices {
                Some(spec) => spec.indices(g.local_rank())?,
                None => vec![g.local_rank()],
            };
            if g.rank() == 0 {
                eprintln!("MPI: {} ranks; rank 0 on {} writes the run folder", g.size(), g.host());
            }
            let result = run_inner(cfg, restart, &indices, Some(g));
            if let Err(e) = &result {
                eprintln!("error ({}): {e:#}", g.describe());
                if g.size() > 1 {
                    g.abort(1);
                }
            }
            return result;
        }
    }
    let _ = &group;
    let indices = match devices {
        Some(spec) => spec.indices(0)?,
        None => vec![0],
    };
    run_inner(cfg, restart, &indices, None)
}

fn run_inner(cfg: &RunConfig, restart: bool, indices: &[usize], group: Option<&dyn Collective>) -> Result<PathBuf> {
    let started = Instant::now();
    let leader = group.is_none_or(|g| g.rank() == 0);
    let (devices, note) = replica_devices(cfg.run.device, indices)?;
    if let (Some(note), true) = (note, leader) {
        eprintln!("{note}");
    }
    let p = prepare(cfg)?;
    // Everything that can refuse the run is checked before the run folder changes: the index
    // `model.index` names, then (with the folder locked) what the folder already holds.
    let given = if leader && cfg.model.kind.is_generator() { configured_index(cfg, &p)? } else { None };
    // Rank 0 owns the run folder; the other ranks read and write nothing there.
    let run_folder = if leader { Some(open_run_dir(cfg, "train")?) } else { None };
    if let Some(folder) = &run_folder {
        if !restart {
            let (last, _) = checkpoint_dirs(folder);
            if cfg.model.kind.is_generator() {
                resumed_ids(cfg, &p, &last, given.as_ref())?;
            } else {
                check_resumable(&last, &p, cfg)?;
            }
        }
        folder.write_config(cfg)?;
    }
    let dir: PathBuf = match &run_folder {
        Some(d) => d.to_path_buf(),
        None => cfg.run.out_dir.clone().unwrap_or_else(|| PathBuf::from("runs").join("train")),
    };
    if leader {
        write_id_maps(&p.ds, &dir)?;
        if restart {
            let ck = dir.join("checkpoints");
            if ck.exists() {
                std::fs::remove_dir_all(&ck).with_context(|| format!("{}: cannot remove", ck.display()))?;
            }
        }
    }
    let (ranks, replicas) = (group.map_or(1, |g| g.size()), devices.len());
    if leader && ranks * replicas > 1 {
        eprintln!(
            "data parallel: {ranks} rank(s) x {replicas} replica(s); global batch {} ({} per replica)",
            cfg.train.batch_size,
            cfg.train.batch_size / (ranks * replicas)
        );
    }
    let device = devices[0].clone();
    let outcome = if cfg.model.kind.is_generator() {
        train_generator(cfg, &p, &dir, &devices, group, given)?
    } else if ranks * replicas > 1 {
        train_sasrec_parallel(cfg, &p, &dir, &devices, group)?
    } else {
        super::sasrec_cmd::train(cfg, &p, &dir, &device)?
    };
    if !leader {
        return Ok(dir);
    }
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
