//! The largest single tensors a run makes, checked against the device's largest buffer before
//! the first step.
//!
//! A wgpu adapter refuses a buffer above its limit (128 MiB on lavapipe, 2-4 GiB on most GPUs),
//! and Burn reports that only as a panic at the next read from the device, deep in training or
//! evaluation. Every tensor listed here is one that the model really allocates whole (attention
//! scores, feed-forward activations, logits, the beam search's cached keys and values, weight
//! tables); its size follows from the settings alone, so a run that cannot fit stops at once,
//! naming the tensor, the limit and the setting to lower, and the largest value that fits.
//! The scores of the encoder's self-attention were measured to be exactly the buffer lavapipe
//! refused (512 x 16 x 81 x 81 x 4 bytes = 214,990,848).
//!
//! Not covered: the device's total memory (wgpu does not report it), so a run whose tensors each
//! fit but together exceed the memory still fails inside Burn.

use burn::tensor::Device;

use crate::kernels::capabilities::{Capabilities, DeviceClass};
use crate::model::sasrec::{SasRecConfig, SasRecLoss};
use crate::model::ModelConfig;

/// One tensor: what it is, its shape, and what makes it large.
#[derive(Debug, Clone, PartialEq)]
pub struct Buffer {
    /// What the tensor is, in words.
    pub what: &'static str,
    /// Its shape (f32 elements).
    pub shape: Vec<usize>,
    /// The dimension that is the batch (`None`: a weight, the same for any batch).
    pub batch_dim: Option<usize>,
    /// The setting behind the batch dimension (or, for a weight, the settings to lower).
    pub setting: &'static str,
    /// The settings that also make it large.
    pub also: &'static str,
}

impl Buffer {
    /// Its size in bytes (f32).
    pub fn bytes(&self) -> u64 {
        self.shape.iter().map(|&d| d as u64).product::<u64>() * 4
    }

    /// The largest batch with which it fits in `limit` bytes.
    fn largest_batch(&self, limit: u64) -> Option<u64> {
        let b = self.shape[self.batch_dim?] as u64;
        let per_example = self.bytes() / b.max(1);
        Some(limit / per_example.max(1))
    }
}

/// The sizes of one run of a generator (TIGER or DiscRec).
#[derive(Debug, Clone, Copy)]
pub struct GeneratorRun<'a> {
    /// The model settings.
    pub model: &'a ModelConfig,
    /// The token vocabulary's size.
    pub vocab: usize,
    /// The longest item ID in tokens.
    pub max_id_len: usize,
    /// The history window in items (`data.max_len`).
    pub window: usize,
}

impl GeneratorRun<'_> {
    /// Encoder rows: every ID of the window plus EOS.
    fn enc_len(&self) -> usize {
        self.window * self.max_id_len + 1
    }

    /// The largest tensors of one training step with `batch` examples a device.
    pub fn training(&self, batch: usize) -> Vec<Buffer> {
        let m = self.model;
        let (s, t) = (self.enc_len(), self.max_id_len + 1);
        let also = "model.num_heads, data.max_len";
        let mut out = vec![
            Buffer { what: "the encoder's self-attention scores", shape: vec![batch, m.num_heads, s, s], batch_dim: Some(0), setting: "train.batch_size", also },
            Buffer { what: "the encoder's feed-forward activations", shape: vec![batch, s, m.d_ff], batch_dim: Some(0), setting: "train.batch_size", also: "model.d_ff, data.max_len" },
            Buffer { what: "the decoder's cross-attention scores", shape: vec![batch, m.num_heads, t, s], batch_dim: Some(0), setting: "train.batch_size", also },
            Buffer { what: "the output logits", shape: vec![batch, t, self.vocab], batch_dim: Some(0), setting: "train.batch_size", also: "tokenizer.codebook_size" },
            Buffer { what: "the token embedding table", shape: vec![self.vocab, m.d_model], batch_dim: None, setting: "model.d_model, tokenizer.codebook_size", also: "" },
        ];
        if m.kind == crate::model::GeneratorKind::Discrec && m.discrec.collaborative {
            out.push(Buffer {
                what: "DiscRec's item-local attention scores",
                shape: vec![batch, m.discrec.heads, s, s],
                batch_dim: Some(0),
                setting: "train.batch_size",
                also: "model.discrec.heads, data.max_len",
            });
        }
        out
    }

    /// The largest tensors of beam search over `users` histories at once with `beams` beams.
    pub fn beam_search(&self, users: usize, beams: usize) -> Vec<Buffer> {
        let m = self.model;
        let s = self.enc_len();
        vec![
            Buffer { what: "the encoder's self-attention scores", shape: vec![users, m.num_heads, s, s], batch_dim: Some(0), setting: "eval.batch_size", also: "model.num_heads, data.max_len" },
            // The encoder's keys and values are shared by the beams of a history, not copied.
            Buffer { what: "beam search's cached cross-attention keys (one layer)", shape: vec![users, m.num_heads, s, m.d_kv], batch_dim: Some(0), setting: "eval.batch_size", also: "model.num_heads, model.d_kv" },
            Buffer { what: "beam search's cross-attention scores", shape: vec![users, m.num_heads, beams, s], batch_dim: Some(0), setting: "eval.batch_size", also: "eval.beam_size, model.num_heads" },
            Buffer { what: "beam search's logits", shape: vec![users * beams, self.vocab], batch_dim: Some(0), setting: "eval.batch_size", also: "eval.beam_size" },
        ]
    }
}

/// The largest tensors of SASRec: a training step with `batch` examples (about
/// `targets_per_example` predicted positions each) and full ranking of `users` at once.
pub fn sasrec(c: &SasRecConfig, items: usize, batch: usize, targets_per_example: f64, users: usize) -> Vec<Buffer> {
    let mut out = vec![
        Buffer { what: "SASRec's attention scores", shape: vec![batch, c.heads, c.max_len, c.max_len], batch_dim: Some(0), setting: "train.batch_size", also: "model.sasrec.heads, model.sasrec.max_len" },
        Buffer { what: "SASRec's scores of every item (full ranking)", shape: vec![users, items], batch_dim: Some(0), setting: "eval.batch_size", also: "" },
        Buffer { what: "SASRec's item table", shape: vec![items, c.hidden], batch_dim: None, setting: "model.sasrec.hidden", also: "" },
    ];
    if c.loss == SasRecLoss::Ce {
        // One row of every item's logit for each predicted position of the batch.
        let targets = ((batch as f64 * targets_per_example).ceil() as usize).max(1);
        out.push(Buffer {
            what: "SASRec's cross-entropy logits over every item (about, from the mean history)",
            shape: vec![targets, items],
            batch_dim: Some(0),
            setting: "train.batch_size",
            also: "model.sasrec.max_len, or model.sasrec.loss = \"bce\"",
        });
    }
    out
}

/// The message for the largest of `tensors` above `limit` bytes, if any.
pub fn first_too_large(tensors: &[Buffer], limit: u64, device: &str) -> Option<String> {
    let t = tensors.iter().filter(|t| t.bytes() > limit).max_by_key(|t| t.bytes())?;
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    let shape = t.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ");
    let fix = match t.largest_batch(limit) {
        Some(0) | None if t.batch_dim.is_some() => format!("lower {}", t.also),
        Some(b) => {
            let also = if t.also.is_empty() { String::new() } else { format!(" (or {})", t.also) };
            format!("lower {} to at most {b}{also}", t.setting)
        }
        None => format!("lower {}", t.setting),
    };
    Some(format!(
        "{} [{shape}] would take {:.1} MiB in one buffer, above the largest buffer of {device} ({:.1} MiB); {fix}",
        t.what,
        mib(t.bytes()),
        mib(limit)
    ))
}

/// Stops a run whose tensors would not fit `device`'s largest buffer (no limit on the CPU
/// backend).
pub fn check(device: &Device, tensors: &[Buffer]) -> Result<(), String> {
    let caps = Capabilities::of(device);
    let name = match caps.class {
        DeviceClass::SoftwareAdapter => "this software wgpu adapter",
        DeviceClass::PhysicalGpu => "this GPU",
        DeviceClass::Cpu | DeviceClass::Other => "this device",
    };
    match caps.max_buffer_bytes {
        Some(limit) => first_too_large(tensors, limit, name).map_or(Ok(()), Err),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(model: &ModelConfig) -> GeneratorRun<'_> {
        GeneratorRun { model, vocab: 66, max_id_len: 4, window: 20 }
    }

    #[test]
    fn the_encoder_scores_are_the_buffer_lavapipe_refused() {
        // `train synthetic --device wgpu-cpu` with 16 heads and batch 512 (IDs of 4 tokens):
        // lavapipe said "can't allocate buffer of size: 214990848".
        let model = ModelConfig { num_heads: 16, ..ModelConfig::default() };
        let t = run(&model).training(512);
        assert_eq!(t[0].bytes(), 214_990_848);
        let msg = first_too_large(&t, 128 << 20, "lavapipe").unwrap();
        assert!(msg.starts_with("the encoder's self-attention scores [512, 16, 81, 81] would take 205.0 MiB"), "{msg}");
        assert!(msg.contains("largest buffer of lavapipe (128.0 MiB)"), "{msg}");
        // 134,217,728 / (16 x 81 x 81 x 4) = 319.6 examples.
        assert!(msg.contains("lower train.batch_size to at most 319 (or model.num_heads, data.max_len)"), "{msg}");
        assert!(first_too_large(&run(&model).training(319), 128 << 20, "lavapipe").is_none());
        assert!(first_too_large(&run(&model).training(320), 128 << 20, "lavapipe").is_some());
    }

    #[test]
    fn spec_sizes_fit_lavapipe_and_weights_name_their_settings() {
        // SPEC sizes: batch 256, 4 heads, eval of 256 users with 20 beams.
        let model = ModelConfig::default();
        let r = GeneratorRun { model: &model, vocab: 1026, max_id_len: 4, window: 20 };
        assert!(first_too_large(&r.training(256), 128 << 20, "lavapipe").is_none());
        assert!(first_too_large(&r.beam_search(256, 20), 128 << 20, "lavapipe").is_none());
        let msg = first_too_large(&r.beam_search(8192, 20), 128 << 20, "lavapipe").unwrap();
        assert!(msg.contains("self-attention scores [8192, 6, 81, 81]") && msg.contains("lower eval.batch_size to at most 852"), "{msg}");
        let big = GeneratorRun { model: &model, vocab: 10_000_000, max_id_len: 4, window: 20 };
        let msg = first_too_large(&big.training(1), 128 << 20, "lavapipe").unwrap();
        assert!(msg.contains("the token embedding table [10000000, 128]") && msg.contains("lower model.d_model, tokenizer.codebook_size"), "{msg}");
    }

    #[test]
    fn sasrec_cross_entropy_over_a_large_catalogue_is_caught() {
        let c = SasRecConfig::default();
        let t = sasrec(&c, 1_000_000, 128, 10.0, 256);
        let msg = first_too_large(&t, 2 << 30, "a GPU").unwrap();
        assert!(msg.contains("cross-entropy logits") && msg.contains("[1280, 1000000]"), "{msg}");
        let bce = SasRecConfig { loss: SasRecLoss::Bce, ..c };
        let msg = first_too_large(&sasrec(&bce, 1_000_000, 128, 10.0, 256), 128 << 20, "lavapipe").unwrap();
        assert!(msg.contains("full ranking") && msg.contains("lower eval.batch_size to at most 33"), "{msg}");
    }
}
