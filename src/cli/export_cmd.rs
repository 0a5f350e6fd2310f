//! `sidrec export`: a generator checkpoint as a Hugging Face T5 folder that `transformers`'
//! `T5ForConditionalGeneration.from_pretrained` loads with the same logits, plus the token
//! layout needed to turn token ids back into items.
//!
//! ```text
//! <to>/config.json              T5Config (ReLU feed-forward, tied embeddings, pad 0, EOS 1, start 0)
//! <to>/model.safetensors        F32 weights under Hugging Face names (tied copies left out)
//! <to>/generation_config.json   decoder start, EOS and pad ids for `generate`
//! <to>/sidrec_vocab.json        token layout: special ids, each level's first id and size,
//!                               every item's token ids (dataset ids, in items.json order)
//! DiscRec only:
//! <to>/discrec_input.safetensors  the input blocks
//! <to>/discrec_config.json        their settings (heads, window, position rows, switches)
//! ```
//!
//! The README's section "Export to Hugging Face transformers" documents the files and
//! DiscRec's tensor names and shapes.
//!
//! TIGER's generator is Hugging Face's T5 as it is: no input scaling, the LM head tied to the
//! shared embedding with the `d_model^-0.5` scale that `transformers` applies when
//! `tie_word_embeddings` is true. A DiscRec checkpoint exports its T5 part the same way, but
//! `transformers` alone does not run DiscRec: its input blocks turn the token embeddings into
//! `inputs_embeds`. SASRec has no T5; `sidrec train` already exports its item table.
//!
//! The folder is written under a temporary name beside `--to` and renamed into place, so an
//! interrupted export leaves nothing that looks complete.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use serde::Serialize;

use crate::data::Codebook;
use crate::model::discrec::layer_norm::EPSILON as DISCREC_LN_EPSILON;
use crate::model::discrec::DiscRecConfig;
use crate::model::vocab::{position_rows, DECODER_START, EOS, PAD};
use crate::model::{GeneratorKind, ItemTokens};
use crate::train::checkpoint::{self, Checkpoint};

/// Version tag of `sidrec_vocab.json`.
pub const VOCAB_FORMAT: &str = "sidrec-vocab/1";
/// Token layout file name.
pub const VOCAB_FILE: &str = "sidrec_vocab.json";
/// DiscRec's input blocks.
pub const DISCREC_WEIGHTS: &str = "discrec_input.safetensors";
/// DiscRec's input block settings.
pub const DISCREC_CONFIG: &str = "discrec_config.json";

/// One contiguous range of token ids: a level of a codebook.
#[derive(Debug, Serialize)]
pub struct LevelRange {
    /// `semantic` or `collaborative` (FlexCode's second codebook).
    pub codebook: String,
    /// Level inside the codebook (0 = the first token of an ID).
    pub level: usize,
    /// Token id of code 0 of this level: code `c` is token `first_token_id + c`.
    pub first_token_id: u32,
    /// Number of codes.
    pub size: usize,
}

/// One catalogue item and its ID as token ids.
#[derive(Debug, Serialize)]
pub struct ItemEntry {
    /// The dataset's own item id.
    pub item: String,
    /// Its semantic ID as token ids (no EOS).
    pub tokens: Vec<u32>,
}

/// `sidrec_vocab.json`.
#[derive(Debug, Serialize)]
pub struct VocabFile {
    /// [`VOCAB_FORMAT`].
    pub format: &'static str,
    /// `tiger` or `discrec`.
    pub model_kind: String,
    /// Token ids in all (the model's `vocab_size`).
    pub vocab_size: usize,
    /// Padding.
    pub pad_token_id: u32,
    /// Closes every encoder input and every generated ID.
    pub eos_token_id: u32,
    /// First decoder input.
    pub decoder_start_token_id: u32,
    /// Every level's range of token ids, semantic levels first.
    pub levels: Vec<LevelRange>,
    /// The longest item ID, in tokens.
    pub max_id_tokens: usize,
    /// The history window the model was trained with, in items.
    pub max_history_items: usize,
    /// How an encoder input is built.
    pub encoder_input: &'static str,
    /// How decoder inputs and labels are built.
    pub decoder_input: &'static str,
    /// Every item, in dense-id order (the checkpoint's items.json).
    pub items: Vec<ItemEntry>,
}

const ENCODER_INPUT: &str = "the history's item IDs (oldest first, at most max_history_items items) \
    flattened, then eos_token_id; rows of a batch are left-padded with pad_token_id, attention_mask 0 there";
const DECODER_INPUT: &str = "decoder_input_ids = [decoder_start_token_id, t1..tn], labels = [t1..tn, eos_token_id] \
    for an item with tokens t1..tn; generate one item by constrained beam search over the items' token ids";

/// `discrec_config.json`: what is needed besides the tensors to run DiscRec's input blocks.
#[derive(Debug, Serialize)]
pub struct DiscRecExport {
    /// The `[model.discrec]` settings the model was trained with.
    pub settings: DiscRecConfig,
    /// Width of every tensor (T5's `d_model`).
    pub d_model: usize,
    /// The longest item ID in tokens: the item-attention window.
    pub max_id_tokens: usize,
    /// Rows of each position table.
    pub position_rows: usize,
    /// First collaborative token id (FlexCode's mixed IDs), if any.
    pub cf_start: Option<u32>,
    /// Epsilon added to the standard deviation in the layer norms.
    pub layer_norm_epsilon: f64,
    /// Whether the decoder has a block (false: the encoder-only ablation).
    pub decoder_block: bool,
}

/// The checkpoint folder for `path`: `path` itself, or `path/checkpoints/best` for a run
/// folder.
pub fn resolve_checkpoint(path: &Path) -> PathBuf {
    let best = path.join("checkpoints").join("best");
    if checkpoint::existing(path).is_none() && checkpoint::existing(&best).is_some() {
        best
    } else {
        path.to_path_buf()
    }
}

/// Fails when `to` exists and is a file or a non-empty folder.
fn check_destination(to: &Path) -> Result<()> {
    if to.is_dir() {
        let mut entries = std::fs::read_dir(to).with_context(|| format!("{}: cannot read the folder", to.display()))?;
        if entries.next().is_some() {
            bail!("{}: the folder exists and is not empty; export into a new or empty folder", to.display());
        }
    } else if to.exists() {
        bail!("{}: exists and is not a folder; export into a new or empty folder", to.display());
    }
    Ok(())
}

/// The token layout and item list of `ck`.
pub fn vocab_file(ck: &Checkpoint, items: &ItemTokens) -> VocabFile {
    let vocab = items.vocab();
    let mut levels = Vec::new();
    for codebook in Codebook::ALL {
        for (level, &size) in vocab.sizes(codebook).iter().enumerate() {
            levels.push(LevelRange {
                codebook: codebook.to_string(),
                level,
                first_token_id: vocab.range(codebook, level).start,
                size,
            });
        }
    }
    VocabFile {
        format: VOCAB_FORMAT,
        model_kind: ck.spec.model.kind.to_string(),
        vocab_size: vocab.size(),
        pad_token_id: PAD,
        eos_token_id: EOS,
        decoder_start_token_id: DECODER_START,
        levels,
        max_id_tokens: items.max_len(),
        max_history_items: ck.spec.max_len,
        encoder_input: ENCODER_INPUT,
        decoder_input: DECODER_INPUT,
        items: (0..items.num_items() as u32)
            .map(|i| ItemEntry { item: ck.items.raw(i).to_string(), tokens: items.tokens(i).to_vec() })
            .collect(),
    }
}

fn json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    crate::artifact::write_json(path, value).map_err(anyhow::Error::from)
}

/// Writes every export file of `ck` into the existing folder `dir`.
fn write_files(ck: &Checkpoint, dir: &Path) -> Result<()> {
    let items = ck.item_tokens()?;
    let vocab_size = ck.model.t5.vocab_size();
    if vocab_size != items.vocab().size() {
        bail!(
            "{}: the model has {vocab_size} token ids, generator.json's vocabulary {}: the files do not belong together",
            ck.dir.display(),
            items.vocab().size()
        );
    }
    let config = ck.spec.model.t5(vocab_size);
    crate::model::t5::save_pretrained(&ck.model.t5, &config, dir)?;
    json(
        &dir.join("generation_config.json"),
        &serde_json::json!({ "decoder_start_token_id": DECODER_START, "eos_token_id": EOS, "pad_token_id": PAD }),
    )?;
    json(&dir.join(VOCAB_FILE), &vocab_file(ck, &items))?;
    if let Some(d) = ck.model.discrec() {
        crate::model::discrec::weights::save_safetensors(d, &dir.join(DISCREC_WEIGHTS))?;
        let cf_start = items.vocab().cf_start();
        let info = DiscRecExport {
            settings: ck.spec.model.discrec.clone(),
            d_model: ck.model.t5.d_model(),
            max_id_tokens: items.max_len(),
            position_rows: position_rows(items.max_len(), cf_start.is_some()),
            cf_start,
            layer_norm_epsilon: DISCREC_LN_EPSILON,
            decoder_block: d.decoder.is_some(),
        };
        json(&dir.join(DISCREC_CONFIG), &info)?;
    }
    Ok(())
}

/// Exports the generator checkpoint `checkpoint` (a checkpoint folder, or a run folder for its
/// `checkpoints/best`) into the new folder `to`. Returns the files written.
pub fn export(checkpoint: &Path, to: &Path) -> Result<Vec<PathBuf>> {
    check_destination(to)?;
    let dir = resolve_checkpoint(checkpoint);
    let parts = checkpoint::read_parts(&dir)?;
    match parts.spec.model.kind {
        GeneratorKind::Sasrec => {
            let run = parts.dir.parent().and_then(Path::parent).map(|r| r.join("item_embeddings.safetensors"));
            let hint = match run.filter(|p| p.is_file()) {
                Some(p) => format!(" (here: {})", p.display()),
                None => String::new(),
            };
            bail!(
                "{}: a SASRec checkpoint has no T5 to export; `sidrec train` already wrote its item table beside \
                 the run's checkpoints as item_embeddings.npy and item_embeddings.safetensors (tensor \
                 \"item_embeddings\", one row per item of items.json){hint}",
                parts.dir.display()
            );
        }
        GeneratorKind::Tiger | GeneratorKind::Discrec => {}
    }
    // The host CPU backend: exporting only moves weights.
    let ck = checkpoint::load(&parts.dir, &Device::flex())?;
    let parent = match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("{}: cannot create the folder", parent.display()))?;
    let name = to.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "export".into());
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-"))
        .tempdir_in(&parent)
        .with_context(|| format!("{}: cannot create a temporary folder", parent.display()))?;
    write_files(&ck, tmp.path())?;
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(tmp.path())?.map(|e| e.map(|e| to.join(e.file_name()))).collect::<std::io::Result<_>>()?;
    files.sort();
    if to.is_dir() {
        // Checked empty above; rename does not replace a folder on every platform.
        std::fs::remove_dir(to).with_context(|| format!("{}: cannot replace the empty folder", to.display()))?;
    }
    std::fs::rename(tmp.path(), to).with_context(|| format!("{}: cannot move the export into place", to.display()))?;
    Ok(files)
}

/// Runs `sidrec export`: writes the folder and says how to load it.
pub fn run(checkpoint: &Path, to: &Path) -> Result<()> {
    let files = export(checkpoint, to)?;
    for f in &files {
        println!("wrote {}", f.display());
    }
    let discrec = files.iter().any(|f| f.ends_with(DISCREC_WEIGHTS));
    println!(
        "load with: transformers.T5ForConditionalGeneration.from_pretrained({:?}); token ids <-> items: {VOCAB_FILE}",
        to.display().to_string()
    );
    if discrec {
        println!(
            "DiscRec: transformers runs the T5 part only; feed it inputs_embeds from the input blocks in {DISCREC_WEIGHTS} \
             (see the README, \"Export to Hugging Face transformers\")"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_must_be_new_or_empty_folders() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        check_destination(&d.join("new")).unwrap();
        check_destination(d).unwrap();
        std::fs::write(d.join("f"), "x").unwrap();
        let err = check_destination(d).unwrap_err().to_string();
        assert!(err.contains("exists and is not empty"), "{err}");
        let err = check_destination(&d.join("f")).unwrap_err().to_string();
        assert!(err.contains("is not a folder"), "{err}");
    }
}
