//! DiscRec's input block (arXiv 2506.15576; SPEC section 4): item-level position embedding,
//! the semantic branch `e`, the collaborative branch `c`, and the softmax gate fusing them,
//! `Dropout(g_sem * e + g_col * c)`. One copy sits in front of the encoder, one in front of the
//! decoder ([`DiscRec`]).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Int, Tensor};

use super::branch::{CollaborativeBranch, PrefixKv};
use super::config::DiscRecConfig;
use super::layer_norm::LayerNorm;
use crate::model::vocab::{position_rows, EncoderBatch};
use crate::model::dropout::dropout;

const NO_FEATURES: &str = "DiscRec reads the item positions and slots: upload the batch with Generator::encoder_batch";

/// What a block returns.
#[derive(Debug, Clone)]
pub struct DiscRecOutput {
    /// `[batch, seq, d_model]` the fused input embeddings for the T5 stack.
    pub embeds: Tensor<3>,
    /// `[batch, seq]` the gate weight of the semantic branch per token (the collaborative
    /// branch gets `1 - gate_sem`); `None` without the gate (or without the block).
    pub gate_sem: Option<Tensor<2>>,
}

impl DiscRecOutput {
    /// The mean semantic gate weight over the tokens where `mask` is 1 (pass the encoder's
    /// `attention_mask` to leave padding out; `None` averages over every token), as the
    /// `[sum of weights, number of tokens]` pair so that batches can be pooled. `None` without
    /// the gate.
    ///
    /// # Shapes
    /// - mask: `[batch, seq]`
    /// - output: `[2]`
    pub fn gate_sem_sum(&self, mask: Option<Tensor<2>>) -> Option<Tensor<1>> {
        let g = self.gate_sem.clone()?;
        let mask = mask.unwrap_or_else(|| g.ones_like());
        Some(Tensor::cat(vec![(g * mask.clone()).sum(), mask.sum()], 0))
    }
}

/// One input block (the paper's item-level position embedding, collaborative branch and gate).
#[derive(Module, Debug)]
pub struct InputBlock {
    /// `[rows, d_model]` item-level position embedding (`max_id_len + 2` rows, or
    /// `2 max_id_len + 2` with a collaborative codebook: [`crate::model::vocab::item_position`]);
    /// `None` in the ablation.
    pub position: Option<Embedding>,
    /// The norm of `e + v` (`x1`).
    pub norm: Option<LayerNorm>,
    /// The collaborative branch; `None` in the ablation (the block then returns `e`).
    pub branch: Option<CollaborativeBranch>,
    /// `[2, d_model]`: `w_sem` (row 0) and `w_col` (row 1); `None` sums the branches.
    pub gate: Option<Embedding>,
    dropout: Dropout,
    /// The longest ID in tokens (the kernel's window).
    window: usize,
    /// The first collaborative token id (decoder prefixes take their codebook from it); 0
    /// without a collaborative codebook.
    cf_start: usize,
}

impl InputBlock {
    /// A block of width `d_model` for IDs of at most `window` tokens, whose collaborative
    /// tokens (if any) start at id `cf_start`.
    pub fn new(c: &DiscRecConfig, d_model: usize, window: usize, cf_start: Option<u32>, device: &Device) -> Self {
        let positions = position_rows(window, cf_start.is_some());
        let collaborative = c.collaborative;
        Self {
            position: (collaborative && c.position).then(|| EmbeddingConfig::new(positions, d_model).init(device)),
            norm: collaborative.then(|| LayerNorm::new(d_model, device)),
            branch: collaborative
                .then(|| CollaborativeBranch::new(d_model, c.heads, c.d_ff, c.dropout, c.kernel, device)),
            gate: (collaborative && c.gate).then(|| EmbeddingConfig::new(2, d_model).init(device)),
            dropout: DropoutConfig::new(c.dropout).init(),
            window,
            cf_start: cf_start.map_or(0, |s| s as usize),
        }
    }

    /// `x1 = LN(e + v)`.
    fn x1(&self, e: Tensor<3>, positions: Tensor<2, Int>, norm: &LayerNorm) -> Tensor<3> {
        match &self.position {
            Some(p) => norm.forward(e + p.forward(positions)),
            None => norm.forward(e),
        }
    }

    /// Gate (or sum) and dropout. The two-way softmax of the scores `s_sem = e . w_sem` and
    /// `s_col = c . w_col` is `sigmoid(s_sem - s_col)`, and `g e + (1 - g) c = c + g (e - c)`:
    /// one reduction instead of two plus a softmax, which matters where every launched kernel
    /// costs (small models, software adapters).
    fn fuse(&self, e: Tensor<3>, c: Tensor<3>) -> DiscRecOutput {
        let Some(gate) = &self.gate else {
            return DiscRecOutput { embeds: dropout(&self.dropout, e + c), gate_sem: None };
        };
        let [batch, seq, d_model] = e.dims();
        let w = gate.weight.val(); // [2, d_model]
        let w_sem = w.clone().slice([0..1]).reshape([1, 1, d_model]);
        let w_col = w.slice([1..2]).reshape([1, 1, d_model]);
        let g_sem = sigmoid((e.clone() * w_sem - c.clone() * w_col).sum_dim(2)); // [batch, seq, 1]
        let embeds = dropout(&self.dropout, c.clone() + (e - c) * g_sem.clone());
        DiscRecOutput { embeds, gate_sem: Some(g_sem.reshape([batch, seq])) }
    }

    /// The encoder's block; see [`DiscRec::encoder_input`].
    fn encoder(&self, e: Tensor<3>, batch: &EncoderBatch) -> DiscRecOutput {
        let (Some(norm), Some(branch)) = (&self.norm, &self.branch) else {
            return DiscRecOutput { embeds: e, gate_sem: None };
        };
        let x1 = self.x1(e.clone(), batch.item_pos.clone().expect(NO_FEATURES), norm);
        let c = branch.forward_items(x1, batch.item_slot.clone().expect(NO_FEATURES), self.window);
        self.fuse(e, c)
    }

    /// The decoder's block; see [`DiscRec::decoder_input`].
    fn decoder(&self, e: Tensor<3>, ids: &Tensor<2, Int>) -> DiscRecOutput {
        let (Some(norm), Some(branch)) = (&self.norm, &self.branch) else {
            return DiscRecOutput { embeds: e, gate_sem: None };
        };
        let [rows, seq, _] = e.dims();
        assert!(seq <= self.window + 1, "a decoder prefix of {seq} tokens is longer than an ID ({} tokens) plus the start", self.window);
        let positions = Tensor::<1, Int>::arange(0..seq as i64, &e.device()).unsqueeze::<2>().expand([rows, seq]);
        let x1 = self.x1(e.clone(), self.decoder_positions(positions, ids), norm);
        let c = branch.forward_causal(x1);
        self.fuse(e, c)
    }

    /// The item positions of decoder prefix tokens `ids` at sequence positions `positions`:
    /// collaborative tokens sit past EOS in the table (`item_position`).
    fn decoder_positions(&self, positions: Tensor<2, Int>, ids: &Tensor<2, Int>) -> Tensor<2, Int> {
        let [rows, seq] = positions.dims();
        if self.cf_start == 0 || self.position.is_none() {
            return positions;
        }
        assert_eq!(ids.dims(), [rows, seq], "decoder ids do not match the embeddings");
        let cf = ids.clone().greater_equal_elem(self.cf_start as i64).int();
        positions + cf * (self.window as i64 + 1)
    }

    /// One decoding step of the decoder's block: `e` embeds the newest prefix token `ids`, at
    /// position `t`; `cache` holds the branch's keys and values of the tokens before it.
    /// Equals the last row of [`Self::decoder`] over the whole prefix.
    fn decoder_step(&self, e: Tensor<3>, ids: &Tensor<2, Int>, t: usize, cache: &mut Option<PrefixKv>) -> Tensor<3> {
        let (Some(norm), Some(branch)) = (&self.norm, &self.branch) else {
            return e;
        };
        let [rows, _, _] = e.dims();
        assert!(t <= self.window, "a decoder prefix of {} tokens is longer than an ID ({} tokens) plus the start", t + 1, self.window);
        let positions = Tensor::<2, Int>::full([rows, 1], t as i64, &e.device());
        let x1 = self.x1(e.clone(), self.decoder_positions(positions, ids), norm);
        let c = branch.step_causal(x1, cache);
        self.fuse(e, c).embeds
    }
}

/// The decoder block's state while decoding one token at a time ([`DiscRec::decoder_step`]).
#[derive(Debug, Clone, Default)]
pub struct DecoderInputCache {
    kv: Option<PrefixKv>,
    /// Tokens read so far.
    step: usize,
}

impl DecoderInputCache {
    /// Keeps rows `rows`, in that order (beam reordering).
    pub fn reorder(&mut self, rows: Tensor<1, Int>) {
        self.kv = self.kv.take().map(|kv| kv.select(rows));
    }
}

/// DiscRec's two input blocks: the encoder's, and the decoder's unless it is ablated.
#[derive(Module, Debug)]
pub struct DiscRec {
    /// The block in front of the encoder.
    pub encoder: InputBlock,
    /// The block in front of the decoder; `None` in the encoder-only ablation.
    pub decoder: Option<InputBlock>,
}

impl DiscRec {
    /// The encoder's input: `e` is T5's shared token embedding of `batch.input_ids`. Uses
    /// `batch.item_pos` for the position embedding and `batch.item_slot` for the item-local
    /// attention (histories are left-padded, so slot 2 is always the true last item).
    ///
    /// # Shapes
    /// - e: `[batch, seq_src, d_model]`
    /// - output: `[batch, seq_src, d_model]`, gate `[batch, seq_src]`
    pub fn encoder_input(&self, e: Tensor<3>, batch: &EncoderBatch) -> DiscRecOutput {
        let [b, s, _] = e.dims();
        assert_eq!(batch.item_slot.as_ref().expect(NO_FEATURES).dims(), [b, s], "item_slot does not match the embeddings");
        assert_eq!(batch.item_pos.as_ref().expect(NO_FEATURES).dims(), [b, s], "item_pos does not match the embeddings");
        self.encoder.encoder(e, batch)
    }

    /// The decoder's input: `e` holds the embeddings of the prefix `ids` = `[start,
    /// c1..c_{t-1}]`, positions `0..t` (shifted for collaborative tokens, see
    /// [`crate::model::vocab::item_position`]), causal attention. Returns `e` unchanged without
    /// a decoder block.
    ///
    /// # Shapes
    /// - e: `[batch, seq_tgt, d_model]`
    /// - ids: `[batch, seq_tgt]`
    /// - output: `[batch, seq_tgt, d_model]`, gate `[batch, seq_tgt]`
    pub fn decoder_input(&self, e: Tensor<3>, ids: &Tensor<2, Int>) -> DiscRecOutput {
        match &self.decoder {
            Some(block) => block.decoder(e, ids),
            None => DiscRecOutput { embeds: e, gate_sem: None },
        }
    }

    /// One decoding step of [`Self::decoder_input`]: the input embedding of the newest prefix
    /// token `ids` (embedded as `e`), reading the tokens before it from `cache`. Equals the last
    /// row of `decoder_input` over the whole prefix, at one token's cost instead of the prefix's.
    ///
    /// # Shapes
    /// - e: `[rows, 1, d_model]`
    /// - ids: `[rows, 1]`
    /// - output: `[rows, 1, d_model]`
    pub fn decoder_step(&self, e: Tensor<3>, ids: &Tensor<2, Int>, cache: &mut DecoderInputCache) -> Tensor<3> {
        let t = cache.step;
        cache.step += 1;
        match &self.decoder {
            Some(block) => block.decoder_step(e, ids, t, &mut cache.kv),
            None => e,
        }
    }
}
