//! What `sidrec tokenize` builds and how it trains: the `[tokenizer]` section of a run config.
//!
//! Defaults follow SPEC section 2 (TIGER-style RQ-VAE as in the official DiscRec / LC-Rec code):
//! 4 levels of 256 codes of width 32, encoder 2048-1024-512-256-128-64, AdamW lr 1e-3 with
//! weight decay 1e-4, batch 1024, beta 0.25, k-means initialisation with 10 iterations,
//! Sinkhorn (epsilon 0.003, 50 iterations) at the last level, 20 collision rounds.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::flexcode::config::FlexCodeConfig;

/// Which tokenizer to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenizerKind {
    /// RQ-VAE: MLP encoder and decoder around a residual quantizer, trained by gradient descent.
    Rqvae,
    /// Residual k-means on the embeddings themselves (no neural encoder); much faster.
    Rqkmeans,
    /// FlexCode: a semantic and a collaborative RQ-VAE with a per-item router splitting the ID
    /// between them (SPEC section 5; `[tokenizer.flexcode]`).
    Flexcode,
}

impl std::fmt::Display for TokenizerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenizerKind::Rqvae => "rqvae",
            TokenizerKind::Rqkmeans => "rqkmeans",
            TokenizerKind::Flexcode => "flexcode",
        })
    }
}

/// The `[tokenizer]` section: inputs, architecture, training and collision handling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenizerConfig {
    /// `rqvae`, `rqkmeans` or `flexcode`.
    pub kind: TokenizerKind,
    /// Item embedding matrix (`.npy` or `.safetensors`, one row per dataset item in dense-id
    /// order). Not needed for the synthetic dataset, which brings its own item features.
    pub embeddings: Option<PathBuf>,
    /// Tensor name inside a `.safetensors` embedding file holding several tensors.
    pub embeddings_key: Option<String>,
    /// An existing index file (LC-Rec/LETTER format) to import and make collision-free instead
    /// of training a tokenizer.
    pub import: Option<PathBuf>,
    /// Number of residual levels (codes per item before collision handling).
    pub levels: usize,
    /// Codes per level.
    pub codebook_size: usize,
    /// Width of the latent space and of every code (RQ-VAE only; RQ-KMeans codes live in the
    /// embedding space).
    pub code_dim: usize,
    /// Hidden widths of the encoder MLP, input side first; the decoder mirrors them.
    pub hidden: Vec<usize>,
    /// Training epochs over the item set (RQ-VAE).
    pub epochs: usize,
    /// Items per training batch.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub lr: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Commitment weight: `||q - sg(r)||^2 + beta * ||r - sg(q)||^2`.
    pub beta: f64,
    /// Lloyd iterations of k-means (RQ-VAE codebook initialisation and RQ-KMeans).
    pub kmeans_iters: usize,
    /// Balanced k-means: Sinkhorn-balanced assignments instead of plain nearest-centroid ones.
    pub balanced_kmeans: bool,
    /// Sinkhorn-balanced assignment at the last level while training the RQ-VAE.
    pub sinkhorn: bool,
    /// Re-seed codes that no item chose during an epoch with the residuals of random items (ours;
    /// the reference code has no such step and loses most first-level codes).
    pub reset_dead_codes: bool,
    /// Sinkhorn temperature on distances normalised to [-1, 1].
    pub sinkhorn_epsilon: f64,
    /// Alternating row/column normalisations per Sinkhorn call.
    pub sinkhorn_iters: usize,
    /// Rounds of Sinkhorn re-assignment of colliding groups before the disambiguation level.
    pub collision_rounds: usize,
    /// Full-catalogue evaluation (utilisation, collisions) every this many epochs (0 = only at
    /// the end).
    pub eval_every: usize,
    /// Items per batch when encoding the catalogue.
    pub encode_batch: usize,
    /// Seed of the tokenizer; the run seed when left out.
    pub seed: Option<u64>,
    /// FlexCode's own keys (`[tokenizer.flexcode]`, used when `kind = "flexcode"`).
    pub flexcode: FlexCodeConfig,
}

impl Default for TokenizerConfig {
    fn default() -> Self {
        Self {
            kind: TokenizerKind::Rqvae,
            embeddings: None,
            embeddings_key: None,
            import: None,
            levels: 4,
            codebook_size: 256,
            code_dim: 32,
            hidden: vec![2048, 1024, 512, 256, 128, 64],
            epochs: 200,
            batch_size: 1024,
            lr: 1e-3,
            weight_decay: 1e-4,
            beta: 0.25,
            kmeans_iters: 10,
            balanced_kmeans: false,
            sinkhorn: true,
            reset_dead_codes: true,
            sinkhorn_epsilon: 0.003,
            sinkhorn_iters: 50,
            collision_rounds: 20,
            eval_every: 10,
            encode_batch: 4096,
            seed: None,
            flexcode: FlexCodeConfig::default(),
        }
    }
}

impl TokenizerConfig {
    /// Checks ranges the types cannot express; returns the key and the problem.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let positive = [
            ("tokenizer.levels", self.levels),
            ("tokenizer.codebook_size", self.codebook_size),
            ("tokenizer.code_dim", self.code_dim),
            ("tokenizer.batch_size", self.batch_size),
            ("tokenizer.encode_batch", self.encode_batch),
        ];
        for (k, v) in positive {
            if v == 0 {
                return Err((k, "must be at least 1".into()));
            }
        }
        if self.levels > 25 {
            return Err(("tokenizer.levels", format!("at most 25 levels fit the index format (a..z, one kept for disambiguation), got {}", self.levels)));
        }
        if self.hidden.contains(&0) {
            return Err(("tokenizer.hidden", format!("hidden widths must be positive, got {:?}", self.hidden)));
        }
        for (k, v) in [("tokenizer.lr", self.lr), ("tokenizer.sinkhorn_epsilon", self.sinkhorn_epsilon)] {
            if !(v > 0.0 && v.is_finite()) {
                return Err((k, format!("must be a positive number, got {v}")));
            }
        }
        for (k, v) in [("tokenizer.weight_decay", self.weight_decay), ("tokenizer.beta", self.beta)] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err((k, format!("must be a non-negative number, got {v}")));
            }
        }
        if (self.sinkhorn || self.balanced_kmeans || self.collision_rounds > 0) && self.sinkhorn_iters == 0 {
            return Err(("tokenizer.sinkhorn_iters", "must be at least 1 when Sinkhorn is used".into()));
        }
        self.flexcode.validate(self.levels)

    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_spec_and_validate() {
        let c = TokenizerConfig::default();
        assert_eq!((c.levels, c.codebook_size, c.code_dim), (4, 256, 32));
        assert_eq!(c.hidden, vec![2048, 1024, 512, 256, 128, 64]);
        assert!(c.validate().is_ok());
        let bad = TokenizerConfig { codebook_size: 0, ..c.clone() };
        assert_eq!(bad.validate().unwrap_err().0, "tokenizer.codebook_size");
        let bad = TokenizerConfig { lr: f64::NAN, ..c.clone() };
        assert_eq!(bad.validate().unwrap_err().0, "tokenizer.lr");
        let bad = TokenizerConfig { hidden: vec![8, 0], ..c };
        assert_eq!(bad.validate().unwrap_err().0, "tokenizer.hidden");
    }
}
