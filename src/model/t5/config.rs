//! The T5 architecture's sizes, with TIGER's generator (SPEC section 3) as defaults.
//!
//! Field names are those of Hugging Face's `T5Config` (`config.json`), so a config written by
//! [`T5Config::to_hf_json`] loads in `transformers` and the other way round.

use burn::config::Config;
use burn::tensor::Device;

use super::model::T5ForConditionalGeneration;

/// Sizes of a T5 encoder-decoder with a ReLU feed-forward block and tied embeddings.
#[derive(Config, Debug, PartialEq)]
pub struct T5Config {
    /// Number of token ids (the generator's vocabulary, e.g. 1026 for 4 x 256 codes).
    pub vocab_size: usize,
    /// Width of every hidden state.
    #[config(default = 128)]
    pub d_model: usize,
    /// Width of one attention head's keys, queries and values.
    #[config(default = 64)]
    pub d_kv: usize,
    /// Inner width of the feed-forward block.
    #[config(default = 1024)]
    pub d_ff: usize,
    /// Encoder layers.
    #[config(default = 4)]
    pub num_layers: usize,
    /// Decoder layers.
    #[config(default = 4)]
    pub num_decoder_layers: usize,
    /// Attention heads per layer (inner width `num_heads * d_kv`, 384 by default).
    #[config(default = 6)]
    pub num_heads: usize,
    /// Buckets of the relative position bias (halved per direction in the encoder).
    #[config(default = 32)]
    pub relative_attention_num_buckets: usize,
    /// Relative distances from here on share the last bucket.
    #[config(default = 128)]
    pub relative_attention_max_distance: usize,
    /// Dropout probability (embeddings, attention weights, sub-layer outputs, FFN inner);
    /// active only on autodiff devices.
    #[config(default = 0.1)]
    pub dropout_rate: f64,
    /// Epsilon of the RMS layer norms.
    #[config(default = 1e-6)]
    pub layer_norm_epsilon: f64,
}

impl T5Config {
    /// Checks the sizes; the message names the bad field.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("d_model", self.d_model),
            ("d_kv", self.d_kv),
            ("d_ff", self.d_ff),
            ("num_heads", self.num_heads),
            ("relative_attention_max_distance", self.relative_attention_max_distance),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("T5 config: {name} must be positive"));
        }
        if self.relative_attention_num_buckets < 4 {
            return Err("T5 config: relative_attention_num_buckets must be at least 4".into());
        }
        if !(0.0..1.0).contains(&self.dropout_rate) {
            return Err(format!("T5 config: dropout_rate {} is not in [0, 1)", self.dropout_rate));
        }
        if self.layer_norm_epsilon <= 0.0 {
            return Err("T5 config: layer_norm_epsilon must be positive".into());
        }
        Ok(())
    }

    /// Width of the concatenated attention heads.
    pub fn inner_dim(&self) -> usize {
        self.num_heads * self.d_kv
    }

    /// A randomly initialised model, with the initialisation of Hugging Face's
    /// `T5PreTrainedModel._init_weights` (normal, std `d_model^-0.5` etc.). Panics on an invalid
    /// config (see [`T5Config::validate`]).
    pub fn init(&self, device: &Device) -> T5ForConditionalGeneration {
        if let Err(e) = self.validate() {
            panic!("{e}");
        }
        T5ForConditionalGeneration::new(self, device)
    }

    /// The Hugging Face `config.json` of this architecture (ReLU feed-forward, tied embeddings,
    /// pad 0, EOS 1, decoder start 0).
    pub fn to_hf_json(&self) -> serde_json::Value {
        serde_json::json!({
            "architectures": ["T5ForConditionalGeneration"],
            "model_type": "t5",
            "is_encoder_decoder": true,
            "vocab_size": self.vocab_size,
            "d_model": self.d_model,
            "d_kv": self.d_kv,
            "d_ff": self.d_ff,
            "num_layers": self.num_layers,
            "num_decoder_layers": self.num_decoder_layers,
            "num_heads": self.num_heads,
            "relative_attention_num_buckets": self.relative_attention_num_buckets,
            "relative_attention_max_distance": self.relative_attention_max_distance,
            "dropout_rate": self.dropout_rate,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "feed_forward_proj": "relu",
            "tie_word_embeddings": true,
            "pad_token_id": 0,
            "eos_token_id": 1,
            "decoder_start_token_id": 0,
            "initializer_factor": 1.0,
        })
    }

    /// Reads the sizes from a Hugging Face `config.json` value. Fails (naming the key) on
    /// architectures this implementation does not have: a feed-forward other than `relu` or
    /// untied embeddings.
    pub fn from_hf_json(v: &serde_json::Value) -> Result<Self, String> {
        let int = |k: &str, default: Option<usize>| -> Result<usize, String> {
            match v.get(k) {
                Some(x) => x.as_u64().map(|x| x as usize).ok_or_else(|| format!("{k} is not a non-negative integer")),
                None => default.ok_or_else(|| format!("{k} is missing")),
            }
        };
        let float = |k: &str, default: f64| -> Result<f64, String> {
            v.get(k).map_or(Ok(default), |x| x.as_f64().ok_or_else(|| format!("{k} is not a number")))
        };
        if let Some(p) = v.get("feed_forward_proj") {
            if p.as_str() != Some("relu") {
                return Err(format!("feed_forward_proj {p} is not supported (only \"relu\")"));
            }
        }
        if v.get("tie_word_embeddings").and_then(|t| t.as_bool()) == Some(false) {
            return Err("tie_word_embeddings false is not supported".into());
        }
        let num_layers = int("num_layers", Some(6))?;
        let c = T5Config {
            vocab_size: int("vocab_size", None)?,
            d_model: int("d_model", Some(512))?,
            d_kv: int("d_kv", Some(64))?,
            d_ff: int("d_ff", Some(2048))?,
            num_layers,
            num_decoder_layers: int("num_decoder_layers", Some(num_layers))?,
            num_heads: int("num_heads", Some(8))?,
            relative_attention_num_buckets: int("relative_attention_num_buckets", Some(32))?,
            relative_attention_max_distance: int("relative_attention_max_distance", Some(128))?,
            dropout_rate: float("dropout_rate", 0.1)?,
            layer_norm_epsilon: float("layer_norm_epsilon", 1e-6)?,
        };
        c.validate()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_tigers_and_round_trip_through_hf_json() {
        let c = T5Config::new(1026);
        assert_eq!((c.d_model, c.d_kv, c.d_ff, c.num_heads, c.inner_dim()), (128, 64, 1024, 6, 384));
        assert_eq!((c.num_layers, c.num_decoder_layers), (4, 4));
        assert_eq!((c.relative_attention_num_buckets, c.relative_attention_max_distance), (32, 128));
        assert_eq!((c.dropout_rate, c.layer_norm_epsilon), (0.1, 1e-6));
        assert_eq!(T5Config::from_hf_json(&c.to_hf_json()).unwrap(), c);
    }

    #[test]
    fn unsupported_and_invalid_configs_are_rejected() {
        let mut v = T5Config::new(10).to_hf_json();
        v["feed_forward_proj"] = "gated-gelu".into();
        assert!(T5Config::from_hf_json(&v).unwrap_err().contains("feed_forward_proj"));
        let mut v = T5Config::new(10).to_hf_json();
        v["tie_word_embeddings"] = false.into();
        assert!(T5Config::from_hf_json(&v).unwrap_err().contains("tie_word_embeddings"));
        assert!(T5Config::new(10).with_num_heads(0).validate().unwrap_err().contains("num_heads"));
        assert!(T5Config::new(10).with_dropout_rate(1.0).validate().unwrap_err().contains("dropout_rate"));
    }
}
