//! The `[model]` section of a run config: which model (the generators `tiger` and `discrec`,
//! or the collaborative baseline `sasrec`), the generators' T5 sizes (SPEC section 3 as
//! defaults), where their semantic IDs come from, and SASRec's settings.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::discrec::DiscRecConfig;
use super::sasrec::SasRecConfig;
use super::t5::T5Config;

/// Which model to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GeneratorKind {
    /// TIGER: the plain T5 encoder-decoder over semantic-ID tokens.
    Tiger,
    /// DiscRec: TIGER with DiscRec's input block in front of the encoder and the decoder.
    Discrec,
    /// SASRec: the sequential recommender over item ids (not a generator; `[model.sasrec]`).
    Sasrec,
}

impl GeneratorKind {
    /// Whether this kind generates semantic IDs (TIGER, DiscRec) rather than scoring items.
    pub fn is_generator(self) -> bool {
        self != GeneratorKind::Sasrec
    }
}

impl std::fmt::Display for GeneratorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GeneratorKind::Tiger => "tiger",
            GeneratorKind::Discrec => "discrec",
            GeneratorKind::Sasrec => "sasrec",
        })
    }
}

/// The `[model]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// `tiger`, `discrec` or `sasrec`.
    pub kind: GeneratorKind,
    /// Semantic IDs: an index file (`<name>.index.json`, as `sidrec tokenize` writes or
    /// LC-Rec/LETTER ship). Left out: `sidrec train` tokenizes the items itself with the
    /// `[tokenizer]` settings.
    pub index: Option<PathBuf>,
    /// Width of the hidden states.
    pub d_model: usize,
    /// Width of one attention head.
    pub d_kv: usize,
    /// Inner width of the feed-forward blocks.
    pub d_ff: usize,
    /// Encoder layers.
    pub num_layers: usize,
    /// Decoder layers.
    pub num_decoder_layers: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Relative position buckets.
    pub relative_attention_num_buckets: usize,
    /// Relative distance from which buckets are shared.
    pub relative_attention_max_distance: usize,
    /// Dropout probability (training only).
    pub dropout: f64,
    /// `[model.discrec]`: DiscRec's input block (used when `kind = "discrec"`).
    pub discrec: DiscRecConfig,
    /// `[model.sasrec]`: SASRec's sizes and loss (used when `kind = "sasrec"`).
    pub sasrec: SasRecConfig,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            kind: GeneratorKind::Tiger,
            index: None,
            d_model: 128,
            d_kv: 64,
            d_ff: 1024,
            num_layers: 4,
            num_decoder_layers: 4,
            num_heads: 6,
            relative_attention_num_buckets: 32,
            relative_attention_max_distance: 128,
            dropout: 0.1,
            discrec: DiscRecConfig::default(),
            sasrec: SasRecConfig::default(),
        }
    }
}

impl ModelConfig {
    /// A generator small enough for unit tests (width 16, one layer a stack).
    #[cfg(test)]
    pub(crate) fn tiny(kind: GeneratorKind) -> Self {
        let mut c = ModelConfig {
            kind,
            d_model: 16,
            d_kv: 8,
            d_ff: 24,
            num_layers: 1,
            num_decoder_layers: 1,
            num_heads: 2,
            relative_attention_num_buckets: 8,
            relative_attention_max_distance: 16,
            ..Default::default()
        };
        c.discrec.d_ff = 32;
        c
    }

    /// The T5 backbone for a vocabulary of `vocab_size` tokens.
    pub fn t5(&self, vocab_size: usize) -> T5Config {
        T5Config::new(vocab_size)
            .with_d_model(self.d_model)
            .with_d_kv(self.d_kv)
            .with_d_ff(self.d_ff)
            .with_num_layers(self.num_layers)
            .with_num_decoder_layers(self.num_decoder_layers)
            .with_num_heads(self.num_heads)
            .with_relative_attention_num_buckets(self.relative_attention_num_buckets)
            .with_relative_attention_max_distance(self.relative_attention_max_distance)
            .with_dropout_rate(self.dropout)
    }

    /// Checks the sizes; returns the key and the problem.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        // The vocabulary size is known only once the IDs are; any positive value checks the rest.
        self.t5(2).validate().map_err(|m| ("model", m))?;
        self.discrec.validate(self.d_model).map_err(|e| ("model.discrec", e.to_string()))?;
        self.sasrec.validate().map_err(|e| ("model.sasrec", e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_tiger_sizes() {
        let c = ModelConfig::default().t5(1026);
        assert_eq!(c, T5Config::new(1026));
        let bad = ModelConfig { num_heads: 0, ..Default::default() };
        assert!(bad.validate().unwrap_err().1.contains("num_heads"));
    }
}
