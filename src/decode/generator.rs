//! Beam search's adapter for the generator: TIGER decodes through T5's cached step; DiscRec
//! also keeps its decoder input block's keys and values of the decoded prefix, so each step
//! reads one new token through the block, then takes T5's cached step.

use burn::tensor::{Int, Tensor};

use super::beam::{BeamModel, BeamState};
use crate::model::discrec::DecoderInputCache;
use crate::model::t5::DecoderCache;
use crate::model::vocab::EncoderBatch;
use crate::model::Generator;

/// DiscRec's decoding state: T5's cache plus the decoder input block's.
struct DiscRecState<'a> {
    model: &'a Generator,
    cache: DecoderCache,
    input: DecoderInputCache,
}

impl BeamState for DiscRecState<'_> {
    fn step(&mut self, tokens: Tensor<1, Int>) -> Tensor<2> {
        let [rows] = tokens.dims();
        let embeds = self.model.decoder_step_embeds(tokens.reshape([rows, 1]), &mut self.input);
        let hidden = self.model.t5.decode_step_embeds(embeds, &mut self.cache);
        let logits = self.model.t5.lm_head(hidden);
        let vocab = logits.dims()[2];
        logits.reshape([rows, vocab])
    }

    fn reorder(&mut self, rows: Tensor<1, Int>) {
        self.cache.reorder(rows.clone());
        self.input.reorder(rows);
    }
}

impl BeamModel for Generator {
    fn start<'a>(&'a self, input: &EncoderBatch) -> Box<dyn BeamState + 'a> {
        if self.discrec().is_none() {
            return self.t5.start(input);
        }
        let (x, _) = self.encoder_embeds(input);
        let hidden = self.t5.encode_embeds(x, input.attention_mask.clone());
        let cache = self.t5.decoder.new_cache(hidden, input.attention_mask.clone());
        Box::new(DiscRecState { model: self, cache, input: DecoderInputCache::default() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{CodeToken, SemanticIndex};
    use crate::decode::{beam_search, Trie};
    use crate::model::{GeneratorKind, ItemTokens, ModelConfig};
    use crate::seed::try_init_seeded;
    use burn::tensor::{Device, Int, Tensor, Tolerance};

    #[test]
    fn cached_beam_steps_match_teacher_forcing_for_discrec() {
        let device = Device::flex();
        // IDs that mix the two codebooks: DiscRec's decoder block takes each prefix token's
        // codebook from its id.
        let (s, c) = (CodeToken::sem, CodeToken::cf);
        let ids = vec![vec![s(0, 0), s(1, 1), s(2, 2)], vec![c(0, 1), s(0, 0), s(1, 2)], vec![c(0, 2), c(1, 2), c(2, 0)], vec![s(0, 0), c(0, 2), c(1, 1)]];
        let index = SemanticIndex { ids };
        let items = ItemTokens::from_index(&index).unwrap();
        assert!(items.has_collaborative());
        let model = try_init_seeded(43, |host| Generator::new(&ModelConfig::tiny(GeneratorKind::Discrec), items.vocab(), 3, host)).unwrap();
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
        // Rows reordered mid-way (as beam search does) carry their prefix with them: one
        // history twice, so that both rows share the encoder row, decoding items 3 and 1, with
        // the rows swapped after the second token.
        let same = items.encoder_input(&[&[0, 1], &[0, 1]]).to_device(&device);
        let full = model.logits(&same, &dec);
        let mut state = model.start(&same);
        let swap = Tensor::<1, Int>::from_data([1i64, 0].as_slice(), &device);
        let mut order = [0usize, 1];
        for t in 0..seq {
            if t == 2 {
                state.reorder(swap.clone());
                order = [1, 0];
            }
            let rows = Tensor::<1, Int>::from_data([order[0] as i64, order[1] as i64].as_slice(), &device);
            let col = dec.decoder_input_ids.clone().select(0, rows.clone()).slice([0..2, t..t + 1]).reshape([2]);
            let step = state.step(col);
            let vocab = step.dims()[1];
            let expect = full.clone().select(0, rows).slice([0..2, t..t + 1, 0..vocab]).reshape([2, vocab]);
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
        assert!((0.0..=gate[1]).contains(&gate[0]), "a sum of weights in [0, 1]: {gate:?}");
        // Decoder inputs [start, c1, c2, c3] of two 3-code items: 8 positions with a label.
        let gate = model.decoder_gate_sum(&dec).unwrap().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(gate[1], 8.0);
        assert!((0.0..=gate[1]).contains(&gate[0]), "a sum of weights in [0, 1]: {gate:?}");
    }
}
