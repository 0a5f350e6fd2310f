//! The generator a run trains: the T5 backbone (TIGER) with, for DiscRec, its input blocks in
//! front of the encoder and the decoder (SPEC section 4). Training, evaluation and beam search
//! see only this type, so every model kind shares the rest of the pipeline.
//!
//! DiscRec's fused input goes through its own dropout and then T5's input dropout, as in the
//! official code, which hands the fused embeddings to Hugging Face's T5 as `inputs_embeds`.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};

use super::config::{GeneratorKind, ModelConfig};
use super::discrec::{DecoderInputCache, DiscRec};
use super::t5::T5ForConditionalGeneration;
use super::vocab::{DecoderBatch, EncoderBatch, EncoderInput, TokenVocab, PAD};

/// TIGER's input: T5's shared token embedding alone (no parameters of its own).
#[derive(Module, Debug)]
pub struct PlainInput {}

/// The block between the token embedding and the T5 stacks. Each block says which batch
/// features it reads ([`Input::item_features`]), so batches upload only those.
#[derive(Module, Debug)]
pub enum Input {
    /// TIGER: the token embedding goes straight into the stacks.
    Plain(PlainInput),
    /// DiscRec's blocks in front of the encoder and the decoder.
    DiscRec(DiscRec),
}

impl Input {
    /// Whether the block reads the encoder rows' item positions and slots.
    pub fn item_features(&self) -> bool {
        matches!(self, Input::DiscRec(_))
    }

    /// DiscRec's blocks, if this is DiscRec.
    pub fn discrec(&self) -> Option<&DiscRec> {
        match self {
            Input::DiscRec(d) => Some(d),
            Input::Plain(_) => None,
        }
    }
}

/// A sequence-to-sequence recommender over semantic-ID tokens.
#[derive(Module, Debug)]
pub struct Generator {
    /// The T5 encoder-decoder with its tied embedding and LM head.
    pub t5: T5ForConditionalGeneration,
    /// The input block (plain for TIGER, DiscRec's).
    pub input: Input,
}

impl Generator {
    /// A randomly initialised generator of kind `cfg.kind` over the tokens of `vocab`, for
    /// item IDs of at most `max_id_len` tokens.
    pub fn new(cfg: &ModelConfig, vocab: &TokenVocab, max_id_len: usize, device: &Device) -> Result<Self, String> {
        if max_id_len == 0 || vocab.levels() + vocab.cf_level_sizes().len() == 0 {
            return Err("items need semantic IDs of at least one token (no codebook levels given)".into());
        }
        let t5 = cfg.t5(vocab.size());
        t5.validate()?;
        let input = match cfg.kind {
            GeneratorKind::Tiger => Input::Plain(PlainInput {}),
            GeneratorKind::Discrec => {
                cfg.discrec.validate(cfg.d_model).map_err(|e| e.to_string())?;
                Input::DiscRec(cfg.discrec.init(cfg.d_model, max_id_len, vocab.cf_start(), device))
            }
            GeneratorKind::Sasrec => return Err("model.kind = \"sasrec\" is not a generator (it scores item ids, see model::sasrec)".into()),
        };
        Ok(Generator { t5: t5.init(device), input })
    }

    /// DiscRec's blocks, if this is DiscRec.
    pub fn discrec(&self) -> Option<&DiscRec> {
        self.input.discrec()
    }

    /// Uploads encoder rows with the features this model's input block reads (TIGER's
    /// batches leave DiscRec's item positions and slots on the host).
    pub fn encoder_batch(&self, input: &EncoderInput, device: &Device) -> EncoderBatch {
        input.upload(device, self.input.item_features())
    }

    /// The encoder's input embeddings and, for DiscRec with its gate, the semantic gate weight
    /// per token.
    ///
    /// # Shapes
    /// - output: `[batch, seq_src, d_model]`, gate `[batch, seq_src]`
    pub fn encoder_embeds(&self, enc: &EncoderBatch) -> (Tensor<3>, Option<Tensor<2>>) {
        let e = self.t5.embed(enc.input_ids.clone());
        match &self.input {
            Input::DiscRec(d) => {
                let out = d.encoder_input(e, enc);
                (out.embeds, out.gate_sem)
            }
            Input::Plain(_) => (e, None),
        }
    }

    /// The decoder's input embeddings for the prefix `ids` (`[start, c1..]`).
    ///
    /// # Shapes
    /// - ids: `[rows, seq_tgt]`
    /// - output: `[rows, seq_tgt, d_model]`
    pub fn decoder_embeds(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let e = self.t5.embed(ids.clone());
        match &self.input {
            Input::DiscRec(d) => d.decoder_input(e, &ids).embeds,
            Input::Plain(_) => e,
        }
    }

    /// The decoder's input embedding of the newest prefix token `ids` while decoding one token
    /// at a time: DiscRec's block reads the tokens before it from `cache`
    /// ([`DiscRec::decoder_step`]); TIGER's is the token embedding. Equals the last row of
    /// [`Self::decoder_embeds`] over the whole prefix.
    ///
    /// # Shapes
    /// - ids: `[rows, 1]`
    /// - output: `[rows, 1, d_model]`
    pub fn decoder_step_embeds(&self, ids: Tensor<2, Int>, cache: &mut DecoderInputCache) -> Tensor<3> {
        let e = self.t5.embed(ids.clone());
        match &self.input {
            Input::DiscRec(d) => d.decoder_step(e, &ids, cache),
            Input::Plain(_) => e,
        }
    }

    /// Logits of every decoder position (teacher forcing).
    ///
    /// # Shapes
    /// - enc: `[batch, seq_src]` tensors
    /// - dec: `[batch, seq_tgt]` tensors
    /// - output: `[batch, seq_tgt, vocab_size]`
    pub fn logits(&self, enc: &EncoderBatch, dec: &DecoderBatch) -> Tensor<3> {
        let (x, _) = self.encoder_embeds(enc);
        let hidden = self.t5.encode_embeds(x, enc.attention_mask.clone());
        let y = self.decoder_embeds(dec.decoder_input_ids.clone());
        self.t5.lm_head(self.t5.decode_embeds(y, hidden, enc.attention_mask.clone()))
    }

    /// Mean cross-entropy over the non-padding labels of `dec`.
    ///
    /// # Shapes
    /// - output: `[1]`
    pub fn loss(&self, enc: &EncoderBatch, dec: &DecoderBatch) -> Tensor<1> {
        T5ForConditionalGeneration::loss(self.logits(enc, dec), dec.labels.clone())
    }

    /// For DiscRec with its gate: the sum of the encoder's semantic gate weights over the real
    /// tokens of `enc` and their number, `[sum, count]`; `None` otherwise.
    pub fn encoder_gate_sum(&self, enc: &EncoderBatch) -> Option<Tensor<1>> {
        let (_, gate) = self.encoder_embeds(enc);
        let g = gate?;
        let mask = enc.attention_mask.clone();
        Some(Tensor::cat(vec![(g * mask.clone()).sum(), mask.sum()], 0))
    }

    /// For DiscRec with a decoder block and its gate: the sum of the decoder block's semantic
    /// gate weights over the teacher-forced inputs `[start, c1..c_L]` of `dec` (the positions
    /// with a label) and their number, `[sum, count]`; `None` otherwise.
    pub fn decoder_gate_sum(&self, dec: &DecoderBatch) -> Option<Tensor<1>> {
        let d = self.discrec()?;
        let ids = dec.decoder_input_ids.clone();
        let g = d.decoder_input(self.t5.embed(ids.clone()), &ids).gate_sem?;
        let mask = dec.labels.clone().not_equal_elem(PAD as i64).float();
        Some(Tensor::cat(vec![(g * mask.clone()).sum(), mask.sum()], 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::try_init_seeded;

    #[test]
    fn ids_without_tokens_are_an_error_for_every_kind() {
        for kind in [GeneratorKind::Tiger, GeneratorKind::Discrec] {
            let err = try_init_seeded(46, |host| Generator::new(&ModelConfig::tiny(kind), &TokenVocab::new(vec![]), 0, host)).unwrap_err();
            assert!(err.contains("at least one token"), "{err}");
        }
    }

    #[test]
    fn tiger_has_no_input_block() {
        let vocab = TokenVocab::new(vec![6; 3]);
        let m = try_init_seeded(44, |host| Generator::new(&ModelConfig::tiny(GeneratorKind::Tiger), &vocab, 3, host)).unwrap();
        assert!(m.discrec().is_none() && !m.input.item_features());
        let d = try_init_seeded(45, |host| Generator::new(&ModelConfig::tiny(GeneratorKind::Discrec), &vocab, 3, host)).unwrap();
        assert!(d.num_params() > m.num_params() && d.input.item_features());
        // With a collaborative codebook DiscRec's position table gets a row per CF slot.
        let mixed = TokenVocab::with_collaborative(vec![6; 3], vec![6; 3]);
        let x = try_init_seeded(45, |host| Generator::new(&ModelConfig::tiny(GeneratorKind::Discrec), &mixed, 3, host)).unwrap();
        let rows = |g: &Generator| g.discrec().unwrap().encoder.position.as_ref().unwrap().weight.dims()[0];
        assert_eq!((rows(&d), rows(&x)), (5, 8));
    }
}
