//! Checkpoints: everything needed to continue training exactly, or to recommend with the model
//! on its own, in one folder.
//!
//! ```text
//! <run>/checkpoints/last/   written after every epoch (model, optimizer, state)
//! <run>/checkpoints/best/   the best epoch by the early-stopping criterion (model, state)
//!   model.bpk        the model's parameters (Burn's burnpack record, parameter ids kept)
//!   optimizer.bpk    AdamW's moments, keyed by those parameter ids (last only)
//!   state.json       epoch, step, best criterion, patience counter, the metrics log
//!   generator.json   model kind and sizes, the token vocabulary, the history window
//!   items.json       dense item id -> the dataset's own item id
//!   items.index.json every item's semantic ID, with the dataset's own ids (generators only)
//!   manifest.json    the size and CRC-32 of every other file
//! ```
//!
//! Loading verifies the manifest first: a truncated, edited or corrupted file is an error that
//! names it (checkpoints of older versions, without a manifest, load unverified).
//!
//! Every model kind writes the same layout (SASRec has no semantic IDs, so no index file);
//! `generator.json` names the kind, and loading a checkpoint of another kind than the caller
//! needs is a [`CheckpointError::WrongKind`].
//!
//! A checkpoint folder is written whole under a temporary name and then renamed into place
//! (the previous one is moved aside first and removed last), so a crash at any moment leaves
//! either the old or the new checkpoint, never a mixture.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use serde::{Deserialize, Serialize};

use super::resume::{RunSettings, SettingChange};
use crate::data::{IdMap, SemanticIndex};
use crate::model::{Generator, GeneratorKind, ItemTokens, ModelConfig, TokenVocab};

/// What went wrong with a checkpoint, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A file could not be read or written.
    #[error("{path}: {msg}")]
    File {
        /// The file.
        path: PathBuf,
        /// What happened.
        msg: String,
    },
    /// The folder is not a checkpoint.
    #[error("{0}: not a sidrec checkpoint (no generator.json); pass the checkpoint folder, e.g. <run>/checkpoints/best")]
    NotACheckpoint(PathBuf),
    /// The checkpoint holds another kind of model than the caller needs.
    #[error("{path}: a {found} checkpoint, but {needed} is needed here")]
    WrongKind {
        /// The checkpoint folder.
        path: PathBuf,
        /// The kind it holds.
        found: GeneratorKind,
        /// What the caller needs, in words (e.g. `a generator (tiger or discrec)`).
        needed: String,
    },
}

fn file_err(path: &Path, msg: impl std::fmt::Display) -> CheckpointError {
    CheckpointError::File { path: path.to_path_buf(), msg: msg.to_string() }
}

/// A data-layer error on a checkpoint's file, which names the file itself (so it is said once).
fn data_err(e: crate::data::DataError) -> CheckpointError {
    use crate::data::DataError as D;
    match e {
        D::Io { path, error } => file_err(&path, error),
        D::Format { path, at, msg } => CheckpointError::File { path: PathBuf::from(format!("{}{at}", path.display())), msg },
        D::Dataset { name, msg } => CheckpointError::File { path: name.into(), msg },
    }
}

/// How to rebuild the model of a checkpoint (generator or SASRec).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorSpec {
    /// Kind and sizes.
    pub model: ModelConfig,
    /// Codes per level of the semantic codebook in the token vocabulary (empty for SASRec).
    pub level_sizes: Vec<usize>,
    /// Codes per level of the collaborative codebook (FlexCode's mixed IDs; empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cf_level_sizes: Vec<usize>,
    /// The longest item ID in tokens (checkpoints of older versions leave it out: one token
    /// a semantic level).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_id_len: Option<usize>,
    /// History window (items) the model was trained with.
    pub max_len: usize,
    /// Dataset name, for reports.
    pub dataset: String,
}

impl GeneratorSpec {
    /// The spec of a generator over `items` (vocabulary and longest ID from there).
    pub fn generator(model: ModelConfig, items: &ItemTokens, max_len: usize, dataset: String) -> Self {
        GeneratorSpec {
            model,
            level_sizes: items.vocab().level_sizes().to_vec(),
            cf_level_sizes: items.vocab().cf_level_sizes().to_vec(),
            max_id_len: Some(items.max_len()),
            max_len,
            dataset,
        }
    }

    /// The token vocabulary.
    pub fn vocab(&self) -> TokenVocab {
        TokenVocab::with_collaborative(self.level_sizes.clone(), self.cf_level_sizes.clone())
    }

    /// The longest item ID in tokens.
    pub fn id_len(&self) -> usize {
        self.max_id_len.unwrap_or(self.level_sizes.len())
    }

    /// A freshly initialised generator of this shape.
    pub fn init(&self, device: &Device) -> Result<Generator, String> {
        Generator::new(&self.model, &self.vocab(), self.id_len(), device)
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One epoch's line of the metrics log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// 1-based epoch.
    pub epoch: usize,
    /// Optimizer steps so far.
    pub step: usize,
    /// Mean training cross-entropy per label token over the epoch.
    pub train_loss: f64,
    /// Mean validation cross-entropy per label token.
    pub valid_loss: f64,
    /// Learning rate at the epoch's last step.
    pub lr: f64,
    /// Training examples per second over the epoch (validation excluded).
    pub train_examples_per_s: f64,
    /// Wall time of the epoch, validation included.
    pub seconds: f64,
    /// Steps skipped for a non-finite loss or gradient (`train.on_nonfinite = "skip"`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped_steps: usize,
    /// Validation Recall/NDCG when computed this epoch (`train.eval_every`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_metrics: Option<std::collections::BTreeMap<String, f64>>,
}

/// Where training stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken.
    pub step: usize,
    /// Steps the schedule is planned for.
    pub total_steps: usize,
    /// Best early-stopping criterion so far, lower is better: the validation loss, or minus
    /// the validation metric named by `train.early_stopping`.
    #[serde(alias = "best_valid_loss")]
    pub best_criterion: Option<f64>,
    /// The epoch that reached it.
    pub best_epoch: usize,
    /// Epochs since the last improvement.
    pub epochs_without_improvement: usize,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Every epoch so far.
    pub log: Vec<EpochLog>,
    /// The settings the run trains with (absent in checkpoints of older sidrec versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<RunSettings>,
    /// Settings changed when the run was resumed, with the epoch it resumed after.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<(usize, SettingChange)>,
}

/// A loaded checkpoint.
pub struct Checkpoint {
    /// The folder it came from.
    pub dir: PathBuf,
    /// The model's shape.
    pub spec: GeneratorSpec,
    /// Where training stood.
    pub state: TrainState,
    /// The generator, on the requested device.
    pub model: Generator,
    /// Dense item id -> raw id.
    pub items: IdMap,
    /// Semantic IDs of the items.
    pub index: SemanticIndex,
}

impl Checkpoint {
    /// The items' token sequences.
    pub fn item_tokens(&self) -> Result<ItemTokens, CheckpointError> {
        ItemTokens::new(self.spec.vocab(), &self.index).map_err(|e| file_err(&self.dir.join("items.index.json"), e))
    }
}

/// What [`save`] writes.
pub struct Snapshot<'a, M: Module> {
    /// The model's shape.
    pub spec: &'a GeneratorSpec,
    /// Where training stands.
    pub state: &'a TrainState,
    /// The parameters.
    pub model: &'a M,
    /// The optimizer, for a resumable checkpoint.
    pub optimizer: Option<&'a ModuleOptimizer>,
    /// Dense item id -> raw id.
    pub items: &'a IdMap,
    /// Semantic IDs (generators).
    pub index: Option<&'a SemanticIndex>,
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    crate::artifact::write_bytes(path, bytes).map_err(|e| file_err(&e.path, e.source))
}

fn json<T: Serialize>(path: &Path, value: &T) -> Result<(), CheckpointError> {
    crate::artifact::write_json(path, value).map_err(|e| file_err(&e.path, e.source))
}

/// Writes `snap` as the checkpoint folder `dir`, replacing any previous one atomically.
pub fn save<M: Module>(dir: &Path, snap: &Snapshot<M>) -> Result<(), CheckpointError> {
    let tmp = sibling(dir, "tmp");
    let old = sibling(dir, "old");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| file_err(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| file_err(&tmp, e))?;
    if let Err(e) = write_files(&tmp, snap) {
        // A full disk or any other failure leaves no half-written folder behind (it would
        // hold the space that the next attempt needs).
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if dir.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| file_err(&old, e))?;
        }
        std::fs::rename(dir, &old).map_err(|e| file_err(dir, e))?;
    }
    std::fs::rename(&tmp, dir).map_err(|e| file_err(dir, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| file_err(&old, e))?;
    }
    Ok(())
}

/// The files of checkpoint `snap` in the new folder `tmp`, the manifest last.
fn write_files<M: Module>(tmp: &Path, snap: &Snapshot<M>) -> Result<(), CheckpointError> {
    let record = snap.model.clone().into_record().into_bytes().map_err(|e| file_err(&tmp.join("model.bpk"), e))?;
    write(&tmp.join("model.bpk"), &record)?;
    if let Some(optim) = snap.optimizer {
        let path = tmp.join("optimizer.bpk");
        let bytes = optim.to_record().into_bytes().map_err(|e| file_err(&path, e))?;
        write(&path, &bytes)?;
    }
    json(&tmp.join("state.json"), snap.state)?;
    snap.items.save(&tmp.join("items.json")).map_err(|e| file_err(&tmp.join("items.json"), e))?;
    if let Some(index) = snap.index {
        index.write(&tmp.join("items.index.json"), snap.items).map_err(|e| file_err(&tmp.join("items.index.json"), e))?;
    }
    // generator.json last: a folder without it is never taken for a checkpoint.
    json(&tmp.join("generator.json"), snap.spec)?;
    json(&tmp.join(MANIFEST), &Manifest::of(tmp)?)
}

fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dir.with_file_name(format!("{name}.{suffix}"))
}

/// The folder to load for `dir`: `dir` itself, or the previous checkpoint moved aside when a
/// save was interrupted between its two renames. `None` when there is no checkpoint.
pub fn existing(dir: &Path) -> Option<PathBuf> {
    candidates(dir).into_iter().next()
}

/// The newest of [`candidates`] that verifies against its manifest; the first failure when
/// none does; `None` without any checkpoint.
pub fn verified_existing(dir: &Path) -> Result<Option<PathBuf>, CheckpointError> {
    let mut first_error = None;
    for c in candidates(dir) {
        match verify(&c) {
            Ok(()) => return Ok(Some(c)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(None), Err)
}

/// Every checkpoint folder that may stand for `dir`, newest first: `dir` itself and the
/// previous checkpoint moved aside by an interrupted save.
pub fn candidates(dir: &Path) -> Vec<PathBuf> {
    [dir.to_path_buf(), sibling(dir, "old")].into_iter().filter(|d| d.join("generator.json").is_file()).collect()
}

fn read(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    std::fs::read(path).map_err(|e| file_err(path, e))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, CheckpointError> {
    serde_json::from_slice(&read(path)?).map_err(|e| file_err(path, e))
}

/// The parts of a checkpoint every model kind has.
pub struct Parts {
    /// The folder read (see [`existing`]).
    pub dir: PathBuf,
    /// The model's kind and shape.
    pub spec: GeneratorSpec,
    /// Where training stood.
    pub state: TrainState,
    /// Dense item id -> raw id.
    pub items: IdMap,
}

/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";

/// One file of a checkpoint as the manifest records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Size in bytes.
    pub bytes: u64,
    /// CRC-32 (IEEE) of the contents.
    pub crc32: u32,
}

/// `manifest.json`: every file of a checkpoint folder (but itself) with its size and checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// File name -> entry.
    pub files: std::collections::BTreeMap<String, FileEntry>,
}

impl Manifest {
    /// The manifest of the files in `dir` as they are now.
    pub fn of(dir: &Path) -> Result<Manifest, CheckpointError> {
        let mut files = std::collections::BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(|e| file_err(dir, e))? {
            let path = entry.map_err(|e| file_err(dir, e))?.path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if name == MANIFEST || !path.is_file() {
                continue;
            }
            let bytes = read(&path)?;
            files.insert(name, FileEntry { bytes: bytes.len() as u64, crc32: crc32fast::hash(&bytes) });
        }
        Ok(Manifest { files })
    }

    /// Checks every listed file of `dir` against the manifest; the error names the first file
    /// that is missing, of another size, or of other contents.
    pub fn verify(&self, dir: &Path) -> Result<(), CheckpointError> {
        for (name, want) in &self.files {
            let path = dir.join(name);
            let bytes = std::fs::read(&path).map_err(|e| file_err(&path, format!("listed in {MANIFEST} but unreadable: {e}")))?;
            if bytes.len() as u64 != want.bytes {
                return Err(file_err(
                    &path,
                    format!("{} bytes, but {MANIFEST} records {}: the file was truncated or changed", bytes.len(), want.bytes),
                ));
            }
            if crc32fast::hash(&bytes) != want.crc32 {
                return Err(file_err(&path, format!("its checksum differs from {MANIFEST}: the file is corrupt or was edited")));
            }
        }
        Ok(())
    }
}

/// Verifies checkpoint folder `dir` against its manifest (none: an older checkpoint, accepted).
pub fn verify(dir: &Path) -> Result<(), CheckpointError> {
    let path = dir.join(MANIFEST);
    if !path.is_file() {
        return Ok(());
    }
    let manifest: Manifest = read_json(&path)?;
    manifest.verify(dir)
}

/// Reads the spec, state and item ids of the checkpoint in `dir` (see [`existing`]), after
/// verifying its files against the manifest.
pub fn read_parts(dir: &Path) -> Result<Parts, CheckpointError> {
    let dir = existing(dir).ok_or_else(|| CheckpointError::NotACheckpoint(dir.to_path_buf()))?;
    verify(&dir)?;
    let spec: GeneratorSpec = read_json(&dir.join("generator.json"))?;
    let state: TrainState = read_json(&dir.join("state.json"))?;
    let items_path = dir.join("items.json");
    let items = IdMap::load(&items_path).map_err(data_err)?;
    Ok(Parts { dir, spec, state, items })
}

/// Loads `model.bpk` of checkpoint folder `dir` into `model` (a fresh model of its shape).
pub fn load_weights<M: Module>(dir: &Path, model: M) -> Result<M, CheckpointError> {
    let path = dir.join("model.bpk");
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(read(&path)?)).map_err(|e| file_err(&path, e))?;
    model.try_load_record(record).map_err(|e| {
        file_err(
            &path,
            format!("the weights do not fit the model that generator.json describes (a checkpoint of another kind or size, or an edited generator.json?): {e}"),
        )
    })
}

/// Loads the generator checkpoint in `dir` (see [`existing`]) onto `device`; a SASRec
/// checkpoint is a [`CheckpointError::WrongKind`].
pub fn load(dir: &Path, device: &Device) -> Result<Checkpoint, CheckpointError> {
    let Parts { dir, spec, state, items } = read_parts(dir)?;
    if !spec.model.kind.is_generator() {
        return Err(CheckpointError::WrongKind { path: dir, found: spec.model.kind, needed: "a generator (tiger or discrec)".into() });
    }
    let model = crate::seed::try_init_unseeded(|| spec.init(device)).map_err(|e| file_err(&dir.join("generator.json"), e))?;
    let model = load_weights(&dir, model)?;
    let index_path = dir.join("items.index.json");
    let (index, _) = SemanticIndex::read(&index_path, &items).map_err(data_err)?;
    let longest = index.ids.iter().map(Vec::len).max().unwrap_or(0);
    if longest != spec.id_len() {
        return Err(file_err(
            &index_path,
            format!("its longest ID has {longest} tokens, but generator.json says {}: the two files do not belong together", spec.id_len()),
        ));
    }
    Ok(Checkpoint { dir, spec, state, model, items, index })
}

/// Loads the optimizer state saved beside a checkpoint into `optim`.
pub fn load_optimizer(dir: &Path, optim: ModuleOptimizer) -> Result<ModuleOptimizer, CheckpointError> {
    let path = dir.join("optimizer.bpk");
    let record = burn::optim::OptimizerRecord::from_bytes(Bytes::from_bytes_vec(read(&path)?)).map_err(|e| file_err(&path, e))?;
    Ok(optim.load_record(record))
}
