//! SASRec's causal multi-head self-attention: scaled dot products, an additive mask that lets
//! every real position see itself and the real positions before it, dropout on the attention
//! weights, and an output projection.
//!
//! Reference: Kang and McAuley, "Self-Attentive Sequential Recommendation" (ICDM 2018),
//! section III-B; the PyTorch port `pmixer/SASRec.pytorch` uses `nn.MultiheadAttention`, which
//! has the same projections (with biases) and dropout placement.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

use crate::kernels::matmul as mm;
use crate::model::dropout::dropout;

/// Standard deviation of the normal initialisation of every weight matrix and embedding
/// (*ours*, as RecBole's `initializer_range`; biases start at zero).
pub const INIT_STD: f64 = 0.02;

/// A linear layer with bias, weights from `N(0, INIT_STD^2)`.
pub fn linear(d_in: usize, d_out: usize, device: &Device) -> Linear {
    LinearConfig::new(d_in, d_out).with_initializer(Initializer::Normal { mean: 0.0, std: INIT_STD }).init(device)
}

/// Multi-head self-attention with a caller-built additive mask.
#[derive(Module, Debug)]
pub struct CausalAttention {
    /// Query projection, `hidden -> hidden`.
    pub q: Linear,
    /// Key projection.
    pub k: Linear,
    /// Value projection.
    pub v: Linear,
    /// Output projection.
    pub o: Linear,
    dropout: Dropout,
    n_heads: usize,
}

impl CausalAttention {
    /// A layer of width `hidden` with `n_heads` heads (`n_heads` divides `hidden`).
    pub fn new(hidden: usize, n_heads: usize, p: f64, device: &Device) -> Self {
        assert!(n_heads > 0 && hidden % n_heads == 0, "{n_heads} heads must divide hidden = {hidden}");
        CausalAttention {
            q: linear(hidden, hidden, device),
            k: linear(hidden, hidden, device),
            v: linear(hidden, hidden, device),
            o: linear(hidden, hidden, device),
            dropout: DropoutConfig::new(p).init(),
            n_heads,
        }
    }

    fn heads(&self, proj: &Linear, x: Tensor<3>) -> Tensor<4> {
        let [batch, seq, hidden] = x.dims();
        mm::linear(proj, x).reshape([batch, seq, self.n_heads, hidden / self.n_heads]).swap_dims(1, 2)
    }

    /// # Shapes
    /// - x: `[batch, seq, hidden]`
    /// - bias: `[batch, 1, seq, seq]`, 0 where a query may attend a key, a large negative
    ///   number elsewhere
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, x: Tensor<3>, bias: Tensor<4>) -> Tensor<3> {
        let [batch, seq, hidden] = x.dims();
        let d_head = hidden / self.n_heads;
        let q = self.heads(&self.q, x.clone()).mul_scalar(1.0 / (d_head as f64).sqrt()); // [batch, n_heads, seq, d_head]
        let k = self.heads(&self.k, x.clone());
        let v = self.heads(&self.v, x);
        let scores = mm::matmul(q, k.swap_dims(2, 3)) + bias.expand([batch, self.n_heads, seq, seq]);
        let weights = dropout(&self.dropout, softmax(scores, 3));
        let context = mm::matmul(weights, v).swap_dims(1, 2).reshape([batch, seq, hidden]);
        mm::linear(&self.o, context)
    }
}
