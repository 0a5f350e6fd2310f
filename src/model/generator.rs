//! The generator a run trains: the T5 backbone (TIGER) with, for DiscRec, its input blocks in
//! front of the encoder and the decoder (SPEC section 4). Training, evaluation and beam search
//! see only this type, so every model kind shares the rest of the pipeline.
//!
//! DiscRec's fused input goes through its own dropout and then T5's input dropout, as in the
//! official code, which hands the fused embeddings to Hugging Face's T5 as `inputs_embeds`.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};

use super::config::{GeneratorKind, ModelConfig};
use super::discrec::DiscRec;
use super::t5::{DecoderCache, T5ForConditionalGeneration};
use super::vocab::{DecoderBatch, EncoderBatch, PAD};
use crate::decode::{BeamModel, BeamState};

/// A sequence-to-sequence recommender over semantic-ID tokens.
#[derive(Module, Debug)]
pub struct Generator {
    /// The T5 encoder-decoder with its tied embedding and LM head.
    pub t5: T5ForConditionalGeneration,
    /// DiscRec's input blocks; `None` for TIGER.
    pub discrec: Option<DiscRec>,
}

impl Generator {
    /// A randomly initialised generator of kind `cfg.kind` over `vocab_size` tokens, for item
    /// IDs of at most `max_id_len` tokens.
    pub fn new(cfg: &ModelConfig, vocab_size: usize, max_id_len: usize, device: &Device) -> Result<Self, String> {
        let t5 = cfg.t5(vocab_size);
        t5.validate()?;
        let discrec = match cfg.kind {
            GeneratorKind::Tiger => None,
            GeneratorKind::Discrec => {
                cfg.discrec.validate(cfg.d_model).map_err(|e| e.to_string())?;
                Some(cfg.discrec.init(cfg.d_model, max_id_len, device))
            }
            GeneratorKind::Sasrec => return Err("model.kind = \"sasrec\" is not a generator (it scores item ids, see model::sasrec)".into()),
        };
        Ok(Generator { t5: t5.init(device), discrec })
    }

    /// The encoder's input embeddings and, for DiscRec with its gate, the semantic gate weight
    /// per token.
    ///
    /// # Shapes
    /// - output: `[batch, seq_src, d_model]`, gate `[batch, seq_src]`
    pub fn encoder_embeds(&self, enc: &EncoderBatch) -> (Tensor<3>, Option<Tensor<2>>) {
        let e = self.t5.embed(enc.input_ids.clone());
        match &self.discrec {
            Some(d) => {
                let out = d.encoder_input(e, enc);
                (out.embeds, out.gate_sem)
            }
            None => (e, None),
        }
    }

    /// The decoder's input embeddings for the prefix `ids` (`[start, c1..]`).
    ///
    /// # Shapes
    /// - ids: `[rows, seq_tgt]`
    /// - output: `[rows, seq_tgt, d_model]`
    pub fn decoder_embeds(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let e = self.t5.embed(ids);
        match &self.discrec {
            Some(d) => d.decoder_input(e).embeds,
            None => e,
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
        let d = self.discrec.as_ref()?;
        let g = d.decoder_input(self.t5.embed(dec.decoder_input_ids.clone())).gate_sem?;
        let mask = dec.labels.clone().not_equal_elem(PAD as i64).float();
        Some(Tensor::cat(vec![(g * mask.clone()).sum(), mask.sum()], 0))
    }
}

/// DiscRec's decoding state: T5's cache plus the prefix decoded so far, which the decoder's
/// input block reads whole at every step (at most an ID's length of tokens).
struct DiscRecState<'a> {
    model: &'a Generator,
    cache: DecoderCache,
    prefix: Option<Tensor<2, Int>>,
}

impl BeamState for DiscRecState<'_> {
    fn step(&mut self, tokens: Tensor<1, Int>) -> Tensor<2> {
        let [rows] = tokens.dims();
        let tokens = tokens.reshape([rows, 1]);
        let prefix = match self.prefix.take() {
            Some(p) => Tensor::cat(vec![p, tokens], 1),
            None => tokens,
        };
        let t = prefix.dims()[1];
        let embeds = self.model.decoder_embeds(prefix.clone());
        let d = embeds.dims()[2];
        let last = embeds.slice([0..rows, t - 1..t, 0..d]);
        let hidden = self.model.t5.decode_step_embeds(last, &mut self.cache);
        self.prefix = Some(prefix);
        let logits = self.model.t5.lm_head(hidden);
        let vocab = logits.dims()[2];
        logits.reshape([rows, vocab])
    }

    fn reorder(&mut self, rows: Tensor<1, Int>) {
        self.cache.reorder(rows.clone());
        self.prefix = self.prefix.take().map(|p| p.select(0, rows));
    }
}

impl BeamModel for Generator {
    fn start<'a>(&'a self, input: &EncoderBatch) -> Box<dyn BeamState + 'a> {
        if self.discrec.is_none() {
            return self.t5.start(input);
        }
        let (x, _) = self.encoder_embeds(input);
        let hidden = self.t5.encode_embeds(x, input.attention_mask.clone());
        let cache = self.t5.decoder.new_cache(hidden, input.attention_mask.clone());
        Box::new(DiscRecState { model: self, cache, prefix: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::SemanticIndex;
    use crate::decode::{beam_search, Trie};
    use crate::model::ItemTokens;
    use burn::tensor::Tolerance;

    fn tiny(kind: GeneratorKind) -> ModelConfig {
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

    #[test]
    fn cached_beam_steps_match_teacher_forcing_for_discrec() {
        let device = Device::flex();
        let index = SemanticIndex::from_codes(&[vec![0, 1, 2], vec![1, 0, 2], vec![2, 2, 0], vec![0, 2, 1]]);
        let items = ItemTokens::from_index(&index).unwrap();
        let model = Generator::new(&tiny(GeneratorKind::Discrec), items.vocab().size(), 3, &device).unwrap();
        let enc = items.encoder_input(&[&[0, 1], &[2]]).to_device(&device);
        let dec = items.decoder_input(&[3, 1]).to_device(&device);
        let full = model.logits(&enc, &dec); // [2, 4, vocab]
        let mut state = model.start(&enc);
        let seq = dec.decoder_input_ids.dims()[1];
        for t in 0..seq {
            let col = dec.decoder_input_ids.clone().slice([0..2, t..t + 1]).reshape([2]);
            let step = state.step(col);
            let vocab = step.dims()[1];
            let expect = full.clone().slice([0..2, t..t + 1, 0..vocab]).reshape([2, vocab]);
            step.into_data().assert_approx_eq::<f32>(&expect.into_data(), Tolerance::rel_abs(1e-4, 1e-5));
        }
        // Beam search over every item returns each once, best first.
        let trie = Trie::new(&items, true, &device).unwrap();
        let ranked = beam_search(&model, &enc, &trie, 4, 4);
        for r in &ranked {
            let mut ids: Vec<u32> = r.iter().map(|x| x.0).collect();
            assert!(r.windows(2).all(|w| w[0].1 >= w[1].1));
            ids.sort();
            assert_eq!(ids, vec![0, 1, 2, 3]);
        }
        let gate = model.encoder_gate_sum(&enc).unwrap().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(gate[1], 7.0 + 4.0, "real tokens: 2 IDs + EOS and 1 ID + EOS");
        assert!(gate[0] > 0.0 && gate[0] < gate[1]);
        // Decoder inputs [start, c1, c2, c3] of two 3-code items: 8 positions with a label.
        let gate = model.decoder_gate_sum(&dec).unwrap().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(gate[1], 8.0);
        assert!(gate[0] > 0.0 && gate[0] < gate[1]);
    }

    #[test]
    fn tiger_has_no_input_block() {
        let device = Device::flex();
        let m = Generator::new(&tiny(GeneratorKind::Tiger), 20, 3, &device).unwrap();
        assert!(m.discrec.is_none());
        let d = Generator::new(&tiny(GeneratorKind::Discrec), 20, 3, &device).unwrap();
        assert!(d.num_params() > m.num_params());
    }
}
