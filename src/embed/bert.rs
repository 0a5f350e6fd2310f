//! A BERT encoder (post-layer-norm Transformer) as in all-MiniLM-L6-v2.
//!
//! Reference: Devlin et al., "BERT" (arXiv 1810.04805) and Hugging Face `modeling_bert.py`
//! (`BertEmbeddings`, `BertSelfAttention`, `BertLayer`). Field names follow the checkpoint keys
//! so that [`super::weights`] maps them one for one.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Int, Tensor};

/// The architecture, read from the model's `config.json` (other keys are ignored).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct BertConfig {
    /// WordPiece vocabulary size.
    pub vocab_size: usize,
    /// Width of every hidden state (384 for MiniLM-L6).
    pub hidden_size: usize,
    /// Number of Transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Inner width of the feed-forward block.
    pub intermediate_size: usize,
    /// Number of learned absolute positions (the longest input).
    pub max_position_embeddings: usize,
    /// Number of token types (segments).
    pub type_vocab_size: usize,
    /// Layer-norm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Activation of the feed-forward block; only `gelu` (exact, erf-based) is supported.
    #[serde(default = "default_act")]
    pub hidden_act: String,
}

fn default_eps() -> f64 {
    1e-12
}

fn default_act() -> String {
    "gelu".into()
}

/// Token, position and token-type embeddings, summed and layer-normed.
#[derive(Module, Debug)]
pub struct BertEmbeddings {
    word_embeddings: Embedding,
    position_embeddings: Embedding,
    token_type_embeddings: Embedding,
    layer_norm: LayerNorm,
}

/// Multi-head self-attention with the residual connection and layer norm of `BertAttention`.
#[derive(Module, Debug)]
pub struct BertAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    output_norm: LayerNorm,
    n_heads: usize,
}

/// One Transformer layer: attention, then the GELU feed-forward block, each post-normed.
#[derive(Module, Debug)]
pub struct BertLayer {
    attention: BertAttention,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// The whole encoder.
#[derive(Module, Debug)]
pub struct Bert {
    embeddings: BertEmbeddings,
    layers: Vec<BertLayer>,
}

fn linear(d_in: usize, d_out: usize, device: &Device) -> Linear {
    LinearConfig::new(d_in, d_out).init(device)
}

impl BertConfig {
    /// Checks what this implementation supports.
    pub fn validate(&self) -> Result<(), String> {
        if self.hidden_act != "gelu" {
            return Err(format!("hidden_act {:?} is not supported (only \"gelu\")", self.hidden_act));
        }
        for (key, value) in [
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("intermediate_size", self.intermediate_size),
            ("vocab_size", self.vocab_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ] {
            if value == 0 {
                return Err(format!("{key} must be at least 1"));
            }
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return Err(format!("layer_norm_eps {} must be a positive number", self.layer_norm_eps));
        }
        if self.num_attention_heads == 0 || self.hidden_size % self.num_attention_heads != 0 {
            return Err(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        Ok(())
    }

    /// A randomly initialised model of this architecture (weights are then loaded over it).
    pub fn init(&self, device: &Device) -> Bert {
        let h = self.hidden_size;
        let norm = || LayerNormConfig::new(h).with_epsilon(self.layer_norm_eps).init(device);
        let embeddings = BertEmbeddings {
            word_embeddings: EmbeddingConfig::new(self.vocab_size, h).init(device),
            position_embeddings: EmbeddingConfig::new(self.max_position_embeddings, h).init(device),
            token_type_embeddings: EmbeddingConfig::new(self.type_vocab_size, h).init(device),
            layer_norm: norm(),
        };
        let layers = (0..self.num_hidden_layers)
            .map(|_| BertLayer {
                attention: BertAttention {
                    query: linear(h, h, device),
                    key: linear(h, h, device),
                    value: linear(h, h, device),
                    output: linear(h, h, device),
                    output_norm: norm(),
                    n_heads: self.num_attention_heads,
                },
                intermediate: linear(h, self.intermediate_size, device),
                output: linear(self.intermediate_size, h, device),
                output_norm: norm(),
            })
            .collect();
        Bert { embeddings, layers }
    }
}

impl BertAttention {
    /// # Shapes
    /// - x: `[batch, seq, d_model]`
    /// - mask_bias: `[batch, n_heads, seq, seq]`, 0 for real keys and a large negative value
    ///   for padding
    /// - output: `[batch, seq, d_model]`
    fn forward(&self, x: Tensor<3>, mask_bias: Tensor<4>) -> Tensor<3> {
        let [batch, seq, d_model] = x.dims();
        let (n_heads, d_head) = (self.n_heads, d_model / self.n_heads);
        let heads = |t: Tensor<3>| t.reshape([batch, seq, n_heads, d_head]).swap_dims(1, 2); // [batch, n_heads, seq, d_head]
        let q = heads(self.query.forward(x.clone()));
        let k = heads(self.key.forward(x.clone()));
        let v = heads(self.value.forward(x.clone()));
        let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((d_head as f64).sqrt()) + mask_bias;
        let context = softmax(scores, 3).matmul(v).swap_dims(1, 2).reshape([batch, seq, d_model]);
        self.output_norm.forward(self.output.forward(context) + x)
    }
}

impl BertLayer {
    fn forward(&self, x: Tensor<3>, mask_bias: Tensor<4>) -> Tensor<3> {
        let a = self.attention.forward(x, mask_bias);
        let ff = self.output.forward(gelu(self.intermediate.forward(a.clone())));
        self.output_norm.forward(ff + a)
    }
}

impl Bert {
    /// The last hidden states. Token types are all 0 (single sentences).
    ///
    /// # Shapes
    /// - input_ids: `[batch, seq]`
    /// - mask: `[batch, seq]`, 1.0 for real tokens and 0.0 for padding
    /// - output: `[batch, seq, d_model]`
    pub fn forward(&self, input_ids: Tensor<2, Int>, mask: Tensor<2>) -> Tensor<3> {
        let [batch, seq] = input_ids.dims();
        let device = input_ids.device();
        let positions = Tensor::<1, Int>::arange(0..seq as i64, &device).reshape([1, seq]).expand([batch, seq]);
        let types = Tensor::<2, Int>::zeros([batch, seq], &device);
        let e = &self.embeddings;
        let mut x = e.layer_norm.forward(
            e.word_embeddings.forward(input_ids)
                + e.position_embeddings.forward(positions)
                + e.token_type_embeddings.forward(types),
        );
        let n_heads = self.layers.first().map_or(1, |l| l.attention.n_heads);
        // (mask - 1) * 1e9: 0 for real keys, -1e9 for padding; one row per key position.
        let mask_bias = mask.sub_scalar(1.0).mul_scalar(1e9).reshape([batch, 1, 1, seq]).expand([batch, n_heads, seq, seq]);
        for layer in &self.layers {
            x = layer.forward(x, mask_bias.clone());
        }
        x
    }

    /// Mean of the hidden states over real tokens, then L2 normalisation (sentence-transformers'
    /// `Pooling(mean)` + `Normalize`).
    ///
    /// # Shapes
    /// - hidden: `[batch, seq, d_model]`
    /// - mask: `[batch, seq]`
    /// - output: `[batch, d_model]`
    pub fn mean_pool_normalize(hidden: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
        let [batch, seq, d_model] = hidden.dims();
        let m = mask.reshape([batch, seq, 1]);
        let summed = (hidden * m.clone().expand([batch, seq, d_model])).sum_dim(1); // [batch, 1, d_model]
        let counts = m.sum_dim(1).clamp_min(1e-9); // [batch, 1, 1]
        let mean = (summed / counts.expand([batch, 1, d_model])).reshape([batch, d_model]);
        let norm = mean.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12); // [batch, 1]
        mean / norm.expand([batch, d_model])
    }
}

/// Gives the loader mutable access to the parameters, by checkpoint name.
pub(crate) mod access {
    use super::*;

    /// Every parameter slot of `Bert`, named as in the Hugging Face checkpoint (without a
    /// `bert.` prefix).
    pub(crate) enum Slot<'a> {
        /// A linear layer (weight stored `[out, in]` in the checkpoint).
        Linear(&'a mut Linear),
        /// A layer norm (`weight` = gamma, `bias` = beta).
        Norm(&'a mut LayerNorm),
        /// An embedding table.
        Embedding(&'a mut Embedding),
    }

    /// All slots with their checkpoint prefixes.
    pub(crate) fn slots(model: &mut Bert) -> Vec<(String, Slot<'_>)> {
        let e = &mut model.embeddings;
        let mut out = vec![
            ("embeddings.word_embeddings".to_string(), Slot::Embedding(&mut e.word_embeddings)),
            ("embeddings.position_embeddings".to_string(), Slot::Embedding(&mut e.position_embeddings)),
            ("embeddings.token_type_embeddings".to_string(), Slot::Embedding(&mut e.token_type_embeddings)),
            ("embeddings.LayerNorm".to_string(), Slot::Norm(&mut e.layer_norm)),
        ];
        for (i, l) in model.layers.iter_mut().enumerate() {
            let p = format!("encoder.layer.{i}");
            let a = &mut l.attention;
            out.push((format!("{p}.attention.self.query"), Slot::Linear(&mut a.query)));
            out.push((format!("{p}.attention.self.key"), Slot::Linear(&mut a.key)));
            out.push((format!("{p}.attention.self.value"), Slot::Linear(&mut a.value)));
            out.push((format!("{p}.attention.output.dense"), Slot::Linear(&mut a.output)));
            out.push((format!("{p}.attention.output.LayerNorm"), Slot::Norm(&mut a.output_norm)));
            out.push((format!("{p}.intermediate.dense"), Slot::Linear(&mut l.intermediate)));
            out.push((format!("{p}.output.dense"), Slot::Linear(&mut l.output)));
            out.push((format!("{p}.output.LayerNorm"), Slot::Norm(&mut l.output_norm)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    pub(crate) fn tiny() -> BertConfig {
        BertConfig {
            vocab_size: 50,
            hidden_size: 16,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            intermediate_size: 32,
            max_position_embeddings: 24,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            hidden_act: "gelu".into(),
        }
    }

    fn embed(model: &Bert, rows: &[Vec<i64>], device: &Device) -> Vec<f32> {
        let seq = rows.iter().map(Vec::len).max().unwrap();
        let mut ids = Vec::new();
        let mut mask = Vec::new();
        for r in rows {
            for j in 0..seq {
                ids.push(*r.get(j).unwrap_or(&0));
                mask.push(if j < r.len() { 1.0f32 } else { 0.0 });
            }
        }
        let ids = Tensor::<2, Int>::from_ints(TensorData::new(ids, [rows.len(), seq]), device);
        let mask = Tensor::<2>::from_data(TensorData::new(mask, [rows.len(), seq]), device);
        let h = model.forward(ids, mask.clone());
        Bert::mean_pool_normalize(h, mask).into_data().try_into_vec_as::<f32>().unwrap()
    }

    #[test]
    fn padding_does_not_change_an_embedding_and_output_is_unit_norm() {
        let device = Device::flex();
        let model = crate::seed::init_seeded(42, |host| tiny().init(host));
        let short = vec![1, 5, 7, 2];
        let alone = embed(&model, &[short.clone()], &device);
        let batched = embed(&model, &[vec![1, 9, 9, 9, 9, 9, 9, 2], short], &device);
        let second = &batched[16..];
        for (a, b) in alone.iter().zip(second) {
            assert!((a - b).abs() < 1e-5, "{alone:?} vs {second:?}");
        }
        let norm: f32 = alone.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        // Different inputs give different embeddings.
        assert!(alone.iter().zip(&batched[..16]).any(|(a, b)| (a - b).abs() > 1e-3));
    }

    #[test]
    fn unsupported_configs_are_rejected() {
        let mut c = tiny();
        c.hidden_act = "relu".into();
        assert!(c.validate().unwrap_err().contains("hidden_act"));
        let mut c = tiny();
        c.num_attention_heads = 5;
        assert!(c.validate().unwrap_err().contains("not divisible"));
    }
}
