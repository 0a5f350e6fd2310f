//! The sentence encoder: WordPiece tokenisation (the model's own `tokenizer.json`, through the
//! `tokenizers` crate), length-sorted batches, BERT, mean pooling and L2 normalisation.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use tokenizers::{Tokenizer, TruncationParams};

use super::bert::{Bert, BertConfig};
use super::weights::load_safetensors;
use crate::data::DataError;

/// Files a model folder must hold.
const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// A loaded sentence encoder on a device.
pub struct SentenceEncoder {
    model: Bert,
    tokenizer: Tokenizer,
    device: Device,
    max_len: usize,
    pad_multiple: usize,
    /// The model's name (`_name_or_path` of its config, else the folder name).
    pub name: String,
    /// Width of the embeddings.
    pub dim: usize,
}

impl std::fmt::Debug for SentenceEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SentenceEncoder({}, dim {}, max_len {})", self.name, self.dim, self.max_len)
    }
}

/// Checks that `dir` is a model folder, naming what is missing.
pub fn check_model_dir(dir: &Path) -> Result<(), DataError> {
    if !dir.is_dir() {
        return Err(DataError::file(
            dir,
            "model folder not found (expected all-MiniLM-L6-v2 with config.json, tokenizer.json, \
             model.safetensors; `bash .ci/fetch-data minilm` puts one in ~/.cache/sidrec/models)",
        ));
    }
    for f in MODEL_FILES {
        if !dir.join(f).is_file() {
            return Err(DataError::file(dir, format!("not a model folder: {f} is missing (needs {})", MODEL_FILES.join(", "))));
        }
    }
    Ok(())
}

impl SentenceEncoder {
    /// Loads the model in `dir` onto `device`; texts are truncated to `max_len` tokens
    /// (including `[CLS]` and `[SEP]`).
    pub fn load(dir: &Path, max_len: usize, device: &Device) -> Result<Self, DataError> {
        check_model_dir(dir)?;
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|e| DataError::io(&config_path, e))?;
        let config: BertConfig = serde_json::from_str(&text)
            .map_err(|e| DataError::line(&config_path, e.line() as u64, format!("not a BERT config: {e}")))?;
        config.validate().map_err(|m| DataError::file(&config_path, m))?;
        if max_len < 2 || max_len > config.max_position_embeddings {
            return Err(DataError::file(
                &config_path,
                format!("max_len {max_len} must lie in [2, {}] (max_position_embeddings)", config.max_position_embeddings),
            ));
        }
        let name = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("_name_or_path").and_then(|n| n.as_str()).map(str::to_string))
            .unwrap_or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());

        let tok_path: PathBuf = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| DataError::file(&tok_path, e.to_string()))?;
        // The file pads and truncates to 128; we pad per batch ourselves and truncate to max_len.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: max_len, ..Default::default() }))
            .map_err(|e| DataError::file(&tok_path, e.to_string()))?;

        let mut model = crate::seed::init_unseeded(|| config.init(device));
        load_safetensors(&mut model, &dir.join("model.safetensors"), device)?;
        Ok(Self { model, tokenizer, device: device.clone(), max_len, pad_multiple: 1, name, dim: config.hidden_size })
    }

    /// Pads every batch to a multiple of `n` tokens (at most `max_len`). Padding is masked, so
    /// results do not change; on GPU backends it bounds the number of distinct shapes, each of
    /// which costs a kernel compilation (seconds on a software adapter), for a little extra
    /// compute. 1 (the default) pads to the longest input of the batch only.
    pub fn with_pad_multiple(mut self, n: usize) -> Self {
        self.pad_multiple = n.max(1);
        self
    }

    /// Token ids of each text, with `[CLS]`/`[SEP]`, truncated to `max_len`.
    pub fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, DataError> {
        let enc = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| DataError::dataset("tokenizer", e.to_string()))?;
        Ok(enc.into_iter().map(|e| e.get_ids().to_vec()).collect())
    }

    /// Embeddings of already tokenised inputs of one batch, row-major `[rows, dim]`.
    fn embed_batch(&self, rows: &[&[u32]]) -> Vec<f32> {
        let longest = rows.iter().map(|r| r.len()).max().unwrap_or(1).max(1);
        let seq = longest.div_ceil(self.pad_multiple).saturating_mul(self.pad_multiple).min(self.max_len).max(longest);
        let mut ids = Vec::with_capacity(rows.len() * seq);
        let mut mask = Vec::with_capacity(rows.len() * seq);
        for r in rows {
            ids.extend(r.iter().map(|&t| t as i64).chain(std::iter::repeat(0).take(seq - r.len())));
            mask.extend((0..seq).map(|j| if j < r.len() { 1.0f32 } else { 0.0 }));
        }
        let ids = Tensor::<2, Int>::from_ints(TensorData::new(ids, [rows.len(), seq]), &self.device);
        let mask = Tensor::<2>::from_data(TensorData::new(mask, [rows.len(), seq]), &self.device);
        let hidden = self.model.forward(ids, mask.clone());
        Bert::mean_pool_normalize(hidden, mask).into_data().try_into_vec_as::<f32>().expect("f32 embeddings")
    }

    /// Embeds `texts` in batches of `batch_size`, row-major `[texts, dim]` in input order.
    /// Texts are grouped by length so that little padding is computed; `progress` is called
    /// with the number of texts done after each batch.
    pub fn embed(&self, texts: &[&str], batch_size: usize, mut progress: impl FnMut(usize)) -> Result<Vec<f32>, DataError> {
        let tokens = self.tokenize(texts)?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(tokens[i].len()));
        let mut out = vec![0f32; texts.len() * self.dim];
        let mut done = 0;
        for chunk in order.chunks(batch_size.max(1)) {
            let rows: Vec<&[u32]> = chunk.iter().map(|&i| tokens[i].as_slice()).collect();
            let emb = self.embed_batch(&rows);
            for (j, &i) in chunk.iter().enumerate() {
                out[i * self.dim..(i + 1) * self.dim].copy_from_slice(&emb[j * self.dim..(j + 1) * self.dim]);
            }
            done += chunk.len();
            progress(done);
        }
        Ok(out)
    }
}
