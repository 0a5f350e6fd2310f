//! SASRec (Kang and McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018): item
//! embeddings plus learned position embeddings, a stack of causal self-attention blocks, and
//! a score for every item of the catalogue by the dot product of the last hidden state with
//! the same item embedding table.
//!
//! Reference code: `kang205/SASRec` (TensorFlow) and its PyTorch port `pmixer/SASRec.pytorch`:
//! the input embeddings are scaled by `sqrt(hidden)` before the positions are added, dropout
//! follows, and a final layer norm closes the stack.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig};
use burn::tensor::activation::{log_sigmoid, log_softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::attention::INIT_STD;
use super::batch::{SequenceBatch, TrainingTargets};
use super::block::{Block, LN_EPS};
use super::config::SasRecConfig;
use crate::kernels::matmul as mm;
use crate::model::dropout::dropout;

/// The SASRec model.
#[derive(Module, Debug)]
pub struct SasRec {
    /// `[items, hidden]`: one row per item in dense-id order, shared by input and output.
    pub item_embedding: Embedding,
    /// `[max_len, hidden]`: row `p` for the item `p` steps before the last one.
    pub position_embedding: Embedding,
    /// The self-attention blocks.
    pub blocks: Vec<Block>,
    /// Norm after the last block.
    pub final_norm: LayerNorm,
    dropout: Dropout,
    hidden: usize,
}

fn embedding(rows: usize, hidden: usize, device: &Device) -> Embedding {
    EmbeddingConfig::new(rows, hidden).with_initializer(Initializer::Normal { mean: 0.0, std: INIT_STD }).init(device)
}

impl SasRec {
    /// A randomly initialised model of `c`'s sizes over `num_items` items (use
    /// [`SasRecConfig::init`], which validates first).
    pub(super) fn new(c: &SasRecConfig, num_items: usize, device: &Device) -> Self {
        SasRec {
            item_embedding: embedding(num_items, c.hidden, device),
            position_embedding: embedding(c.max_len, c.hidden, device),
            blocks: (0..c.blocks).map(|_| Block::new(c, device)).collect(),
            final_norm: LayerNormConfig::new(c.hidden).with_epsilon(LN_EPS).init(device),
            dropout: DropoutConfig::new(c.dropout).init(),
            hidden: c.hidden,
        }
    }

    /// Items in the catalogue.
    pub fn num_items(&self) -> usize {
        self.item_embedding.weight.dims()[0]
    }

    /// Longest history the position table covers.
    pub fn max_len(&self) -> usize {
        self.position_embedding.weight.dims()[0]
    }

    /// The item embedding table, `[items, hidden]` (the CF embeddings).
    pub fn item_table(&self) -> Tensor<2> {
        self.item_embedding.weight.val()
    }

    /// The hidden state of every position (padding positions hold values that nothing reads).
    ///
    /// # Shapes
    /// - x: `[batch, seq]` tensors, `seq <= max_len`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, x: &SequenceBatch) -> Tensor<3> {
        let [batch, seq] = x.items.dims();
        assert!(seq <= self.max_len(), "histories of {seq} items exceed the position table ({})", self.max_len());
        let mask = x.mask.clone().reshape([batch, seq, 1]);
        let e = self.item_embedding.forward(x.items.clone()).mul_scalar((self.hidden as f64).sqrt());
        let h = (e + self.position_embedding.forward(x.positions.clone())) * mask;
        let mut h = dropout(&self.dropout, h);
        for block in &self.blocks {
            h = block.forward(h, x.bias.clone());
        }
        self.final_norm.forward(h)
    }

    /// The hidden state of the last position of every row (the most recent item).
    ///
    /// # Shapes
    /// - output: `[batch, hidden]`
    pub fn last_hidden(&self, x: &SequenceBatch) -> Tensor<2> {
        let h = self.forward(x);
        let [batch, seq, hidden] = h.dims();
        h.slice([0..batch, seq - 1..seq, 0..hidden]).reshape([batch, hidden])
    }

    /// Scores of every item after every row's history: `last_hidden . item_table^T`.
    ///
    /// # Shapes
    /// - output: `[batch, items]`
    pub fn scores(&self, x: &SequenceBatch) -> Tensor<2> {
        mm::matmul(self.last_hidden(x), self.item_table().transpose())
    }

    /// The hidden states of the positions that have a target.
    ///
    /// # Shapes
    /// - output: `[targets, hidden]`
    fn target_hidden(&self, x: &SequenceBatch, t: &TrainingTargets) -> Tensor<2> {
        let h = self.forward(x);
        let [batch, seq, hidden] = h.dims();
        h.reshape([batch * seq, hidden]).select(0, ids(&t.positions, &x.items.device()))
    }

    /// Mean cross-entropy of every position's next item over the whole catalogue.
    ///
    /// # Shapes
    /// - output: `[1]`
    pub fn ce_loss(&self, x: &SequenceBatch, t: &TrainingTargets) -> Tensor<1> {
        let device = x.items.device();
        let n = t.targets.len();
        let logits = mm::matmul(self.target_hidden(x, t), self.item_table().transpose()); // [targets, items]
        let target = ids(&t.targets, &device).reshape([n, 1]);
        log_softmax(logits, 1).gather(1, target).mean().neg()
    }

    /// The paper's loss: per position, `-log sigmoid(s+) - sum_j log sigmoid(-s-_j)` with `s+`
    /// the next item's score and `s-_j` the sampled negatives', averaged over positions.
    ///
    /// # Shapes
    /// - output: `[1]`
    pub fn bce_loss(&self, x: &SequenceBatch, t: &TrainingTargets) -> Tensor<1> {
        let device = x.items.device();
        let n = t.targets.len();
        let k = t.negatives.len() / n.max(1);
        assert_eq!(t.negatives.len(), n * k, "the same number of negatives at every position");
        let h = self.target_hidden(x, t); // [targets, hidden]
        let table = self.item_table();
        let pos = (h.clone() * table.clone().select(0, ids(&t.targets, &device))).sum_dim(1); // [targets, 1]
        let neg = table.select(0, ids(&t.negatives, &device)).reshape([n, k, self.hidden]);
        let neg = (h.unsqueeze_dim::<3>(1) * neg).sum_dim(2).reshape([n, k]); // [targets, k]
        let per_position = log_sigmoid(pos).reshape([n]) + log_sigmoid(neg.neg()).sum_dim(1).reshape([n]);
        per_position.mean().neg()
    }
}

fn ids(v: &[i64], device: &Device) -> Tensor<1, Int> {
    Tensor::<1, Int>::from_ints(TensorData::new(v.to_vec(), [v.len()]), device)
}
