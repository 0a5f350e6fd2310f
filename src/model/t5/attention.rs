//! T5 attention: multi-head attention without the `1/sqrt(d_kv)` score scaling, with a learned
//! relative position bias, and the pre-norm residual layers around it.
//!
//! Reference: Raffel et al., "Exploring the Limits of Transfer Learning with a Unified
//! Text-to-Text Transformer" (arXiv 1910.10683), section 2.1, and Hugging Face
//! `modeling_t5.py` (`T5Attention`, `T5LayerSelfAttention`, `T5LayerCrossAttention`). Field
//! names follow the checkpoint keys (`SelfAttention.q`, `layer_norm`, ...).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig, RmsNorm, RmsNormConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::config::T5Config;
use crate::kernels::matmul as mm;
use crate::model::dropout::dropout;

/// The relative-position bucket of `relative_position` (= key position - query position), as
/// `T5Attention._relative_position_bucket`: half the buckets (per direction when
/// bidirectional) hold exact small distances, the rest grow logarithmically up to
/// `max_distance`; a causal bias only sees the past (later keys share bucket 0).
pub fn relative_position_bucket(relative_position: i64, bidirectional: bool, num_buckets: usize, max_distance: usize) -> i64 {
    let mut num_buckets = num_buckets as i64;
    let mut bucket = 0;
    let distance = if bidirectional {
        num_buckets /= 2;
        if relative_position > 0 {
            bucket += num_buckets;
        }
        relative_position.abs()
    } else {
        (-relative_position).max(0)
    };
    let max_exact = num_buckets / 2;
    if distance < max_exact {
        return bucket + distance;
    }
    // The same f32 operations as the reference, so that boundaries fall in the same bucket.
    let log_ratio = (distance as f32 / max_exact as f32).ln();
    let log_range = (max_distance as f64 / max_exact as f64).ln() as f32;
    let large = max_exact + (log_ratio / log_range * (num_buckets - max_exact) as f32) as i64;
    bucket + large.min(num_buckets - 1)
}

/// Keys and values of one attention layer, split into heads.
#[derive(Debug, Clone)]
pub struct Kv {
    /// `[batch, n_heads, seq, d_kv]`
    pub k: Tensor<4>,
    /// `[batch, n_heads, seq, d_kv]`
    pub v: Tensor<4>,
}

impl Kv {
    /// Keeps rows `rows` (in that order) of the batch dimension.
    pub fn select(self, rows: Tensor<1, Int>) -> Self {
        Kv { k: self.k.select(0, rows.clone()), v: self.v.select(0, rows) }
    }
}

/// Multi-head attention as `T5Attention` (no bias terms, no score scaling).
#[derive(Module, Debug)]
pub struct Attention {
    /// Query projection, `d_model -> n_heads * d_kv`.
    pub q: Linear,
    /// Key projection.
    pub k: Linear,
    /// Value projection.
    pub v: Linear,
    /// Output projection, `n_heads * d_kv -> d_model`.
    pub o: Linear,
    /// `[num_buckets, n_heads]` bias table; only in the first layer of a stack.
    pub relative_attention_bias: Option<Embedding>,
    dropout: Dropout,
    n_heads: usize,
    d_kv: usize,
    num_buckets: usize,
    max_distance: usize,
    bidirectional: bool,
}

fn linear(d_in: usize, d_out: usize, std: f64, device: &Device) -> Linear {
    LinearConfig::new(d_in, d_out)
        .with_bias(false)
        .with_initializer(Initializer::Normal { mean: 0.0, std })
        .init(device)
}

impl Attention {
    /// A layer of `c`'s sizes, initialised as Hugging Face's `_init_weights`.
    pub fn new(c: &T5Config, has_relative_bias: bool, bidirectional: bool, device: &Device) -> Self {
        let (d, inner) = (c.d_model, c.inner_dim());
        let std_d = (d as f64).powf(-0.5);
        Attention {
            q: linear(d, inner, ((d * c.d_kv) as f64).powf(-0.5), device),
            k: linear(d, inner, std_d, device),
            v: linear(d, inner, std_d, device),
            o: linear(inner, d, (inner as f64).powf(-0.5), device),
            relative_attention_bias: has_relative_bias.then(|| {
                EmbeddingConfig::new(c.relative_attention_num_buckets, c.num_heads)
                    .with_initializer(Initializer::Normal { mean: 0.0, std: std_d })
                    .init(device)
            }),
            dropout: DropoutConfig::new(c.dropout_rate).init(),
            n_heads: c.num_heads,
            d_kv: c.d_kv,
            num_buckets: c.relative_attention_num_buckets,
            max_distance: c.relative_attention_max_distance,
            bidirectional,
        }
    }

    /// Number of heads.
    pub fn n_heads(&self) -> usize {
        self.n_heads
    }

    /// The position bias of queries at positions `query_start..query_start + seq_q` against keys
    /// `0..seq_k`. Panics when this layer has no bias table.
    ///
    /// # Shapes
    /// - output: `[1, n_heads, seq_q, seq_k]`
    pub fn position_bias(&self, query_start: usize, seq_q: usize, seq_k: usize, device: &Device) -> Tensor<4> {
        let table = self.relative_attention_bias.as_ref().expect("position_bias needs the layer with the bias table");
        let mut buckets = Vec::with_capacity(seq_q * seq_k);
        for qp in query_start..query_start + seq_q {
            for kp in 0..seq_k {
                let rel = kp as i64 - qp as i64;
                buckets.push(relative_position_bucket(rel, self.bidirectional, self.num_buckets, self.max_distance));
            }
        }
        let buckets = Tensor::<2, Int>::from_ints(TensorData::new(buckets, [seq_q, seq_k]), device);
        table.forward(buckets).permute([2, 0, 1]).unsqueeze::<4>() // [1, n_heads, seq_q, seq_k]
    }

    /// Projects `x` with `proj` and splits the heads.
    ///
    /// # Shapes
    /// - x: `[batch, seq, d_model]`
    /// - output: `[batch, n_heads, seq, d_kv]`
    fn heads(&self, proj: &Linear, x: Tensor<3>) -> Tensor<4> {
        let [batch, seq, _] = x.dims();
        mm::linear(proj, x).reshape([batch, seq, self.n_heads, self.d_kv]).swap_dims(1, 2)
    }

    /// Keys and values of `x`.
    ///
    /// # Shapes
    /// - x: `[batch, seq, d_model]`
    /// - output: `[batch, n_heads, seq, d_kv]` each
    pub fn kv(&self, x: Tensor<3>) -> Kv {
        Kv { k: self.heads(&self.k, x.clone()), v: self.heads(&self.v, x) }
    }

    /// Attention of `q` over `kv` plus the additive `bias` (position bias and masks), then the
    /// output projection.
    ///
    /// # Shapes
    /// - q: `[batch, n_heads, seq_q, d_kv]`
    /// - kv: `[batch, n_heads, seq_k, d_kv]`
    /// - bias: broadcastable to `[batch, n_heads, seq_q, seq_k]`
    /// - output: `[batch, seq_q, d_model]`
    fn attend(&self, q: Tensor<4>, kv: &Kv, bias: Tensor<4>) -> Tensor<3> {
        let [batch, n_heads, seq_q, d_kv] = q.dims();
        let [_, _, seq_k, _] = kv.k.dims();
        let scores = mm::matmul(q, kv.k.clone().swap_dims(2, 3)) + bias.expand([batch, n_heads, seq_q, seq_k]);
        let weights = dropout(&self.dropout, softmax(scores, 3));
        let context = mm::matmul(weights, kv.v.clone()).swap_dims(1, 2).reshape([batch, seq_q, n_heads * d_kv]);
        mm::linear(&self.o, context)
    }
}

/// `T5LayerSelfAttention`: `x + dropout(attention(norm(x)))`.
#[derive(Module, Debug)]
pub struct SelfAttention {
    /// The attention (checkpoint key `SelfAttention`).
    pub attention: Attention,
    /// Pre-norm.
    pub layer_norm: RmsNorm,
    dropout: Dropout,
}

impl SelfAttention {
    /// A layer of `c`'s sizes; `bidirectional` in the encoder, causal in the decoder.
    pub fn new(c: &T5Config, has_relative_bias: bool, bidirectional: bool, device: &Device) -> Self {
        SelfAttention {
            attention: Attention::new(c, has_relative_bias, bidirectional, device),
            layer_norm: RmsNormConfig::new(c.d_model).with_epsilon(c.layer_norm_epsilon).init(device),
            dropout: DropoutConfig::new(c.dropout_rate).init(),
        }
    }

    /// # Shapes
    /// - x: `[batch, seq, d_model]`
    /// - bias: position bias plus masks, broadcastable to `[batch, n_heads, seq, seq]`
    /// - output: `[batch, seq, d_model]`
    pub fn forward(&self, x: Tensor<3>, bias: Tensor<4>) -> Tensor<3> {
        let h = self.layer_norm.forward(x.clone());
        let a = &self.attention;
        let out = a.attend(a.heads(&a.q, h.clone()), &a.kv(h), bias);
        x + dropout(&self.dropout, out)
    }

    /// One decoding step: the new positions' keys and values are appended to `cache`, and the
    /// queries attend to everything cached (no causal mask needed).
    ///
    /// # Shapes
    /// - x: `[batch, seq_new, d_model]`
    /// - bias: broadcastable to `[batch, n_heads, seq_new, seq_past + seq_new]`
    /// - cache: `[batch, n_heads, seq_past, d_kv]`, becomes `seq_past + seq_new` long
    /// - output: `[batch, seq_new, d_model]`
    pub fn forward_cached(&self, x: Tensor<3>, bias: Tensor<4>, cache: &mut Option<Kv>) -> Tensor<3> {
        let h = self.layer_norm.forward(x.clone());
        let a = &self.attention;
        let new = a.kv(h.clone());
        let kv = match cache.take() {
            Some(past) => Kv { k: Tensor::cat(vec![past.k, new.k], 2), v: Tensor::cat(vec![past.v, new.v], 2) },
            None => new,
        };
        let out = a.attend(a.heads(&a.q, h), &kv, bias);
        *cache = Some(kv);
        x + dropout(&self.dropout, out)
    }
}

/// `T5LayerCrossAttention`: `x + dropout(attention(norm(x), encoder output))`.
#[derive(Module, Debug)]
pub struct CrossAttention {
    /// The attention (checkpoint key `EncDecAttention`).
    pub attention: Attention,
    /// Pre-norm.
    pub layer_norm: RmsNorm,
    dropout: Dropout,
}

impl CrossAttention {
    /// A layer of `c`'s sizes.
    pub fn new(c: &T5Config, device: &Device) -> Self {
        CrossAttention {
            attention: Attention::new(c, false, true, device),
            layer_norm: RmsNormConfig::new(c.d_model).with_epsilon(c.layer_norm_epsilon).init(device),
            dropout: DropoutConfig::new(c.dropout_rate).init(),
        }
    }

    /// Keys and values of the encoder output, computed once per batch.
    ///
    /// # Shapes
    /// - encoder_hidden: `[batch, seq_src, d_model]`
    /// - output: `[batch, n_heads, seq_src, d_kv]` each
    pub fn encoder_kv(&self, encoder_hidden: Tensor<3>) -> Kv {
        self.attention.kv(encoder_hidden)
    }

    /// Attends to the encoder. The decoder may carry `group` rows per encoder row (beams of one
    /// user, rows `user * group .. (user + 1) * group`): their queries are stacked along the
    /// sequence axis so that the encoder keys and values are never copied per beam.
    ///
    /// # Shapes
    /// - x: `[batch * group, seq_tgt, d_model]`
    /// - kv: `[batch, n_heads, seq_src, d_kv]`
    /// - encoder_bias: `[batch, 1, 1, seq_src]`, 0 for real tokens, a large negative value for
    ///   padding
    /// - output: `[batch * group, seq_tgt, d_model]`
    pub fn forward(&self, x: Tensor<3>, kv: &Kv, encoder_bias: Tensor<4>) -> Tensor<3> {
        let [rows, seq_tgt, d_model] = x.dims();
        let [batch, _, _, _] = kv.k.dims();
        assert!(rows % batch == 0, "{rows} decoder rows for {batch} encoder rows");
        let group = rows / batch;
        let a = &self.attention;
        let h = self.layer_norm.forward(x.clone()).reshape([batch, group * seq_tgt, d_model]);
        let out = a.attend(a.heads(&a.q, h), kv, encoder_bias).reshape([rows, seq_tgt, d_model]);
        x + dropout(&self.dropout, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_match_hand_computed_values() {
        // 32 buckets, max distance 128, bidirectional: 16 per direction, 8 exact.
        let b = |r| relative_position_bucket(r, true, 32, 128);
        assert_eq!((b(0), b(-1), b(-7), b(1), b(7)), (0, 1, 7, 17, 23));
        // 8 + floor(ln(d/8)/ln(16) * 8): d = 16 -> 10, d = 127 -> 15, beyond -> 15.
        assert_eq!((b(-16), b(-127), b(-1000), b(1000)), (10, 15, 15, 31));
        let c = |r| relative_position_bucket(r, false, 32, 128);
        assert_eq!((c(3), c(0), c(-5), c(-15), c(-16), c(-200)), (0, 0, 5, 15, 16, 31));
    }

    #[test]
    fn position_bias_has_one_row_per_query() {
        let device = Device::flex();
        let c = T5Config::new(10).with_d_model(8).with_num_heads(2).with_d_kv(4).with_relative_attention_num_buckets(8);
        let a = Attention::new(&c, true, false, &device);
        let full = a.position_bias(0, 4, 4, &device);
        let row = a.position_bias(3, 1, 4, &device);
        assert_eq!(row.dims(), [1, 2, 1, 4]);
        let full: Vec<f32> = full.slice([0..1, 0..2, 3..4, 0..4]).into_data().try_into_vec().unwrap();
        let row: Vec<f32> = row.into_data().try_into_vec().unwrap();
        assert_eq!(full, row);
    }
}
