//! `T5ForConditionalGeneration`: shared token embedding, encoder and decoder stacks, and the
//! tied LM head with the `d_model^-0.5` output scale (TIGER's generator, SPEC section 3).
//!
//! Reference: Hugging Face `modeling_t5.py` (`T5ForConditionalGeneration.forward`). The
//! embedding lookup is a separate step ([`T5ForConditionalGeneration::embed`]) so that callers
//! can feed the stacks their own input embeddings (`*_embeds` methods), as DiscRec does.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Initializer};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor};

use super::config::T5Config;
use super::stack::{mask_bias, DecoderCache, Stack};
use crate::model::vocab::PAD;

/// The T5 encoder-decoder with a language-model head tied to the input embedding.
#[derive(Module, Debug)]
pub struct T5ForConditionalGeneration {
    /// `[vocab_size, d_model]` token embedding, shared by encoder, decoder and LM head.
    pub shared: Embedding,
    /// The encoder stack.
    pub encoder: Stack,
    /// The decoder stack.
    pub decoder: Stack,
    d_model: usize,
}

impl T5ForConditionalGeneration {
    pub(crate) fn new(c: &T5Config, device: &Device) -> Self {
        T5ForConditionalGeneration {
            // Hugging Face initialises the shared table with std 1 (initializer_factor 1.0).
            shared: EmbeddingConfig::new(c.vocab_size, c.d_model)
                .with_initializer(Initializer::Normal { mean: 0.0, std: 1.0 })
                .init(device),
            encoder: Stack::new(c, false, device),
            decoder: Stack::new(c, true, device),
            d_model: c.d_model,
        }
    }

    /// Number of token ids.
    pub fn vocab_size(&self) -> usize {
        self.shared.weight.dims()[0]
    }

    /// Width of the hidden states.
    pub fn d_model(&self) -> usize {
        self.d_model
    }

    /// The shared token embedding lookup.
    ///
    /// # Shapes
    /// - ids: `[batch, seq]`
    /// - output: `[batch, seq, d_model]`
    pub fn embed(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        self.shared.forward(ids)
    }

    /// The encoder over token ids.
    ///
    /// # Shapes
    /// - input_ids: `[batch, seq_src]`
    /// - attention_mask: `[batch, seq_src]`, 1.0 real, 0.0 padding
    /// - output: `[batch, seq_src, d_model]`
    pub fn encode(&self, input_ids: Tensor<2, Int>, attention_mask: Tensor<2>) -> Tensor<3> {
        self.encode_embeds(self.embed(input_ids), attention_mask)
    }

    /// The encoder over input embeddings (DiscRec's input block goes before it).
    ///
    /// # Shapes
    /// - embeds: `[batch, seq_src, d_model]`
    /// - attention_mask: `[batch, seq_src]`
    /// - output: `[batch, seq_src, d_model]`
    pub fn encode_embeds(&self, embeds: Tensor<3>, attention_mask: Tensor<2>) -> Tensor<3> {
        self.encoder.encode(embeds, attention_mask)
    }

    /// The decoder's hidden states for the next positions' input embeddings, given the past in
    /// `cache` ([`T5ForConditionalGeneration::decode_step`] without the embedding lookup and
    /// the LM head).
    ///
    /// # Shapes
    /// - embeds: `[rows, seq_new, d_model]`
    /// - output: `[rows, seq_new, d_model]`
    pub fn decode_step_embeds(&self, embeds: Tensor<3>, cache: &mut DecoderCache) -> Tensor<3> {
        self.decoder.decode_cached(embeds, cache)
    }

    /// The decoder's last hidden states over whole input embeddings (teacher forcing).
    ///
    /// # Shapes
    /// - embeds: `[batch, seq_tgt, d_model]`
    /// - encoder_hidden: `[batch, seq_src, d_model]`
    /// - attention_mask: `[batch, seq_src]` (the encoder's)
    /// - output: `[batch, seq_tgt, d_model]`
    pub fn decode_embeds(&self, embeds: Tensor<3>, encoder_hidden: Tensor<3>, attention_mask: Tensor<2>) -> Tensor<3> {
        let cross = self.decoder.cross_kv(encoder_hidden);
        self.decoder.decode(embeds, &cross, &mask_bias(attention_mask))
    }

    /// Scaled by `d_model^-0.5`, then projected on the tied embedding.
    ///
    /// # Shapes
    /// - hidden: `[batch, seq_tgt, d_model]`
    /// - output: `[batch, seq_tgt, vocab_size]`
    pub fn lm_head(&self, hidden: Tensor<3>) -> Tensor<3> {
        let [batch, seq, d_model] = hidden.dims();
        let w = self.shared.weight.val(); // [vocab_size, d_model]
        let vocab = w.dims()[0];
        let h = hidden.reshape([batch * seq, d_model]).mul_scalar((d_model as f64).powf(-0.5));
        crate::kernels::matmul::matmul(h, w.transpose()).reshape([batch, seq, vocab])
    }

    /// Logits of every decoder position (teacher forcing).
    ///
    /// # Shapes
    /// - input_ids: `[batch, seq_src]`
    /// - attention_mask: `[batch, seq_src]`
    /// - decoder_input_ids: `[batch, seq_tgt]`
    /// - output: `[batch, seq_tgt, vocab_size]`
    pub fn forward(&self, input_ids: Tensor<2, Int>, attention_mask: Tensor<2>, decoder_input_ids: Tensor<2, Int>) -> Tensor<3> {
        let [batch, seq_src] = input_ids.dims();
        assert_eq!(attention_mask.dims(), [batch, seq_src], "attention_mask must match input_ids");
        assert_eq!(decoder_input_ids.dims()[0], batch, "decoder_input_ids must have {batch} rows");
        let encoder_hidden = self.encode(input_ids, attention_mask.clone());
        self.lm_head(self.decode_embeds(self.embed(decoder_input_ids), encoder_hidden, attention_mask))
    }

    /// Mean cross-entropy over the labels that are not [`PAD`].
    ///
    /// # Shapes
    /// - logits: `[batch, seq_tgt, vocab_size]`
    /// - labels: `[batch, seq_tgt]`
    /// - output: `[1]`
    pub fn loss(logits: Tensor<3>, labels: Tensor<2, Int>) -> Tensor<1> {
        let [batch, seq, _] = logits.dims();
        assert_eq!(labels.dims(), [batch, seq], "labels must match the logits");
        let picked = log_softmax(logits, 2).gather(2, labels.clone().reshape([batch, seq, 1])).reshape([batch, seq]);
        let keep = labels.not_equal_elem(PAD as i64).float();
        let count = keep.clone().sum().clamp_min(1.0);
        (picked * keep).sum().neg() / count
    }

    /// Encodes once and returns the cache for step-by-step decoding.
    ///
    /// # Shapes
    /// - input_ids: `[batch, seq_src]`
    /// - attention_mask: `[batch, seq_src]`
    pub fn start_decoding(&self, input_ids: Tensor<2, Int>, attention_mask: Tensor<2>) -> DecoderCache {
        let encoder_hidden = self.encode(input_ids, attention_mask.clone());
        self.decoder.new_cache(encoder_hidden, attention_mask)
    }

    /// Logits of the next positions given the past in `cache` (which is extended). Rows may be
    /// `group` beams per encoder row; reorder them with [`DecoderCache::reorder`].
    ///
    /// # Shapes
    /// - decoder_input_ids: `[rows, seq_new]` (usually `seq_new = 1`)
    /// - output: `[rows, seq_new, vocab_size]`
    pub fn decode_step(&self, decoder_input_ids: Tensor<2, Int>, cache: &mut DecoderCache) -> Tensor<3> {
        self.lm_head(self.decode_step_embeds(self.embed(decoder_input_ids), cache))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{TensorData, Tolerance};
    use crate::seed::init_seeded;

    fn tiny() -> T5Config {
        T5Config::new(30)
            .with_d_model(16)
            .with_d_kv(8)
            .with_d_ff(24)
            .with_num_layers(2)
            .with_num_decoder_layers(2)
            .with_num_heads(2)
            .with_relative_attention_num_buckets(8)
            .with_relative_attention_max_distance(12)
    }

    fn ints(v: Vec<i64>, shape: [usize; 2], device: &Device) -> Tensor<2, Int> {
        Tensor::from_ints(TensorData::new(v, shape), device)
    }

    #[test]
    fn tiger_sizes_have_about_4_6_million_parameters() {
        let model = init_seeded(20, |host| T5Config::new(1026).init(host));
        let n = model.num_params();
        assert!((4_500_000..4_700_000).contains(&n), "{n} parameters");
    }

    #[test]
    fn cached_decoding_equals_the_uncached_forward() {
        let device = Device::flex();
        let model = init_seeded(21, |host| tiny().init(host)).to_device(&device);
        let ids = ints(vec![0, 0, 5, 6, 7, 1, 9, 8, 7, 6, 5, 1], [2, 6], &device);
        let mask = Tensor::<2>::from_data(TensorData::new(vec![0f32, 0., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1.], [2, 6]), &device);
        let dec = ints(vec![0, 3, 4, 5, 6, 0, 7, 8, 9, 10], [2, 5], &device);
        let full = model.forward(ids.clone(), mask.clone(), dec.clone());
        let mut cache = model.start_decoding(ids, mask);
        // One position at a time, then the last two at once.
        let mut steps: Vec<Tensor<3>> = (0..3).map(|t| model.decode_step(dec.clone().slice([0..2, t..t + 1]), &mut cache)).collect();
        steps.push(model.decode_step(dec.slice([0..2, 3..5]), &mut cache));
        assert_eq!(cache.step, 5);
        Tensor::cat(steps, 1).into_data().assert_approx_eq::<f32>(&full.into_data(), Tolerance::rel_abs(1e-5, 1e-5));
    }

    #[test]
    fn beams_share_the_encoder_rows_and_reorder() {
        // Two users, three beams each: decoding 6 rows against 2 encoder rows must equal
        // decoding each row against its own copy of the encoder row.
        let device = Device::flex();
        let model = init_seeded(22, |host| tiny().init(host)).to_device(&device);
        let ids = ints(vec![0, 5, 6, 1, 9, 8, 7, 1], [2, 4], &device);
        let mask = Tensor::<2>::from_data(TensorData::new(vec![0f32, 1., 1., 1., 1., 1., 1., 1.], [2, 4]), &device);
        let tokens = ints(vec![0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8], [6, 2], &device);
        let mut grouped = model.start_decoding(ids.clone(), mask.clone());
        model.decode_step(tokens.clone().slice([0..2, 0..1]), &mut grouped);
        // Step 0 ran one row per user; every beam continues its user's row.
        grouped.reorder(Tensor::from_ints([0, 0, 0, 1, 1, 1], &device));
        let got = model.decode_step(tokens.clone().slice([0..6, 1..2]), &mut grouped);
        let users = Tensor::<1, Int>::from_ints([0, 0, 0, 1, 1, 1], &device);
        let expect = model.forward(ids.select(0, users.clone()), mask.select(0, users), tokens).slice([0..6, 1..2]);
        got.into_data().assert_approx_eq::<f32>(&expect.into_data(), Tolerance::rel_abs(1e-5, 1e-5));
    }

    #[test]
    fn dropout_acts_on_autodiff_devices_only_and_gradients_reach_every_part() {
        let device = Device::flex().autodiff();
        let model = init_seeded(23, |host| tiny().with_dropout_rate(0.5).init(host)).to_device(&device).train();
        let ids = ints(vec![0, 5, 6, 1, 9, 8, 7, 1], [2, 4], &device);
        let mask = Tensor::<2>::from_data(TensorData::new(vec![0f32, 1., 1., 1., 1., 1., 1., 1.], [2, 4]), &device);
        let dec = ints(vec![0, 3, 4, 0, 7, 8], [2, 3], &device);
        let labels = ints(vec![3, 4, 1, 7, 8, 1], [2, 3], &device);
        let a = model.forward(ids.clone(), mask.clone(), dec.clone());
        let b = model.forward(ids.clone(), mask.clone(), dec.clone());
        assert!((a.clone() - b).abs().max().into_scalar::<f32>() > 1e-3, "dropout should make training passes differ");
        let grads = T5ForConditionalGeneration::loss(a, labels).backward();
        let g = |p: &burn::module::Param<Tensor<2>>| p.val().grad(&grads).map(|t| t.abs().sum().into_scalar::<f32>());
        assert!(g(&model.shared.weight).unwrap() > 0.0);
        assert!(g(&model.encoder.block[0].self_attention.attention.q.weight).unwrap() > 0.0);
        let bias = model.decoder.block[0].self_attention.attention.relative_attention_bias.as_ref().unwrap();
        assert!(g(&bias.weight).unwrap() > 0.0);
        assert!(g(&model.decoder.block[1].cross_attention.as_ref().unwrap().attention.k.weight).unwrap() > 0.0);
        // The same weights off the autodiff device: deterministic.
        let plain = Device::flex();
        let model = model.valid();
        let run = || model.forward(ids.clone().to_device(&plain), mask.clone().to_device(&plain), dec.clone().to_device(&plain));
        run().into_data().assert_approx_eq::<f32>(&run().into_data(), Tolerance::absolute(0.0));
    }

    #[test]
    fn left_and_right_padding_give_the_same_logits() {
        let device = Device::flex();
        let model = init_seeded(24, |host| tiny().init(host)).to_device(&device);
        let dec = ints(vec![0, 3, 4], [1, 3], &device);
        let run = |row: Vec<i64>, mask: Vec<f32>| {
            let n = row.len();
            let mask = Tensor::<2>::from_data(TensorData::new(mask, [1, n]), &device);
            model.forward(ints(row, [1, n], &device), mask, dec.clone())
        };
        let alone = run(vec![5, 6, 7, 1], vec![1.; 4]);
        let left = run(vec![0, 0, 0, 5, 6, 7, 1], vec![0., 0., 0., 1., 1., 1., 1.]);
        let right = run(vec![5, 6, 7, 1, 0, 0, 0], vec![1., 1., 1., 1., 0., 0., 0.]);
        let tol = Tolerance::rel_abs(1e-5, 1e-5);
        left.into_data().assert_approx_eq::<f32>(&alone.to_data(), tol);
        right.into_data().assert_approx_eq::<f32>(&alone.into_data(), tol);
    }

    #[test]
    fn loss_ignores_pad_labels() {
        let device = Device::flex();
        let logits = Tensor::<3>::from_data(TensorData::new(vec![0f32, 0., 2., 1., 5., 0.], [1, 2, 3]), &device);
        let full = T5ForConditionalGeneration::loss(logits.clone(), ints(vec![2, 1], [1, 2], &device)).into_scalar::<f32>();
        let first = T5ForConditionalGeneration::loss(logits, ints(vec![2, 0], [1, 2], &device)).into_scalar::<f32>();
        let lse0 = (1f32 + 1. + 2f32.exp()).ln();
        let lse1 = (1f32.exp() + 5f32.exp() + 1.).ln();
        assert!((first - (lse0 - 2.)).abs() < 1e-5, "{first}");
        assert!((full - ((lse0 - 2.) + (lse1 - 5.)) / 2.).abs() < 1e-5, "{full}");
    }
}
