//! Constrained beam search, batched over users, on the device.
//!
//! Reference: TIGER (Rajput et al., arXiv 2305.05065) and its official code (Hugging Face
//! `generate` with `num_beams = 20`, `num_return_sequences = 20` and a prefix trie). The model
//! encodes once; every step runs the cached decoder on `batch * beam` rows (one row per user at
//! the first step), gathers each beam's trie children (see [`super::trie`]), takes the top
//! `beam` of `beam * width` candidates per user and reorders the decoder cache. Everything stays
//! on the device until the final scores and trie nodes are read back once.
//!
//! A beam's score is the sum of its tokens' log-probabilities (EOS included when the trie uses
//! it). IDs of one length compare fairly that way. IDs of different lengths (FlexCode, imported
//! indexes) do not: every token adds a negative log-probability, so a raw sum favours short
//! IDs. [`beam_search_scored`] takes a length penalty `alpha`, as Hugging Face's `generate`:
//! candidates are ranked, at every step and at the end, by `sum / len^alpha`, with `len` the
//! real tokens so far (EOS included, the frozen steps that pad short IDs not). `alpha = 0`
//! (the default, [`beam_search`]) is the raw sum; `alpha = 1` the mean log-probability per
//! token. With beams at least as many as items the search is exhaustive under either scoring.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, Transaction};

use super::trie::Trie;
use crate::model::t5::{DecoderCache, T5ForConditionalGeneration};
use crate::model::vocab::{EncoderBatch, DECODER_START};

/// What beam search needs from a generator: encode once, then step a cached decoder.
pub trait BeamModel {
    /// Encodes `input` and returns the decoding state for its `batch` rows.
    fn start<'a>(&'a self, input: &EncoderBatch) -> Box<dyn BeamState + 'a>;
}

/// A generator's decoding state (its caches), driven by [`beam_search`].
pub trait BeamState {
    /// Feeds one token per row and returns the next-token logits (or log-probabilities).
    /// `rows` is a multiple of the encoder batch: rows `u * group .. (u + 1) * group` belong to
    /// user `u`.
    ///
    /// # Shapes
    /// - tokens: `[rows]`
    /// - output: `[rows, vocab_size]`
    fn step(&mut self, tokens: Tensor<1, Int>) -> Tensor<2>;

    /// Reorders the rows: new row `i` continues old row `rows[i]` (always a row of the same
    /// user).
    ///
    /// # Shapes
    /// - rows: `[new_rows]`
    fn reorder(&mut self, rows: Tensor<1, Int>);
}

/// T5's decoding state: the caller-owned decoder cache.
struct T5State<'a> {
    model: &'a T5ForConditionalGeneration,
    cache: DecoderCache,
}

impl BeamModel for T5ForConditionalGeneration {
    fn start<'a>(&'a self, input: &EncoderBatch) -> Box<dyn BeamState + 'a> {
        let cache = self.start_decoding(input.input_ids.clone(), input.attention_mask.clone());
        Box::new(T5State { model: self, cache })
    }
}

impl BeamState for T5State<'_> {
    fn step(&mut self, tokens: Tensor<1, Int>) -> Tensor<2> {
        let [rows] = tokens.dims();
        let logits = self.model.decode_step(tokens.reshape([rows, 1]), &mut self.cache);
        let vocab = logits.dims()[2];
        logits.reshape([rows, vocab])
    }

    fn reorder(&mut self, rows: Tensor<1, Int>) {
        self.cache.reorder(rows);
    }
}

/// Per user, the best items with their scores (sum of token log-probabilities), best first.
pub type Ranked = Vec<Vec<(u32, f32)>>;

/// Constrained beam search: for every row of `input`, the `num_return` best items of `trie`
/// (fewer when the catalogue has fewer items) kept with `beam_size` beams.
///
/// Every returned item is a catalogue item and appears at most once per user. With
/// `beam_size` at least the catalogue size the search is exhaustive, so the result is the
/// exact ranking by sequence log-probability.
pub fn beam_search(model: &dyn BeamModel, input: &EncoderBatch, trie: &Trie, beam_size: usize, num_return: usize) -> Ranked {
    beam_search_scored(model, input, trie, beam_size, num_return, 0.0)
}

/// [`beam_search`] ranking by `sum of log-probabilities / len^length_penalty` (see the module
/// docs); the returned scores are those ranking values.
pub fn beam_search_scored(
    model: &dyn BeamModel,
    input: &EncoderBatch,
    trie: &Trie,
    beam_size: usize,
    num_return: usize,
    length_penalty: f32,
) -> Ranked {
    assert!(beam_size > 0, "beam_size must be positive");
    assert!(length_penalty >= 0.0 && length_penalty.is_finite(), "length_penalty must be >= 0, got {length_penalty}");
    let normalise = length_penalty > 0.0;
    assert!(num_return <= beam_size, "num_return {num_return} exceeds beam_size {beam_size}");
    let [batch, _] = input.input_ids.dims();
    if batch == 0 {
        return Vec::new();
    }
    let device = input.input_ids.device();
    let mut state = model.start(input);
    let mut group = 1;
    let mut nodes = Tensor::<1, Int>::zeros([batch], &device);
    let mut scores = Tensor::<1>::zeros([batch], &device); // sums of log-probabilities
    let mut lens = Tensor::<1>::zeros([batch], &device); // real tokens (with length_penalty)
    let mut tokens = Tensor::<1, Int>::full([batch], DECODER_START as i64, &device);
    let user_base = Tensor::<1, Int>::arange(0..batch as i64, &device).reshape([batch, 1]);
    for d in 0..trie.depth() {
        let rows = batch * group;
        let logits = state.step(tokens);
        let vocab = logits.dims()[1];
        assert!((trie.max_token() as usize) < vocab, "the trie uses token {} but the model has {vocab}", trie.max_token());
        let logp = log_softmax(logits, 1); // [rows, vocab]
        let level = trie.level(d);
        let w = level.width;
        let mut child_tokens = level.tokens.clone().select(0, nodes.clone()); // [rows, w]
        let mut child_nodes = level.next.clone().select(0, nodes.clone());
        let keep = level.keep.clone().select(0, nodes.clone());
        let bias = level.bias.clone().select(0, nodes);
        let mut cand = logp.gather(1, child_tokens.clone()) * keep.clone() + bias + scores.reshape([rows, 1]).expand([rows, w]);
        let mut cand_lens = normalise.then(|| keep + lens.clone().reshape([rows, 1]).expand([rows, w]));
        // At the first step a user has one row: pad its candidates up to `beam_size`.
        let wp = w.max(beam_size.div_ceil(group));
        if wp > w {
            cand = Tensor::cat(vec![cand, Tensor::full([rows, wp - w], f32::NEG_INFINITY, &device)], 1);
            child_tokens = Tensor::cat(vec![child_tokens, Tensor::zeros([rows, wp - w], &device)], 1);
            child_nodes = Tensor::cat(vec![child_nodes, Tensor::zeros([rows, wp - w], &device)], 1);
            cand_lens = cand_lens.map(|l| Tensor::cat(vec![l, Tensor::ones([rows, wp - w], &device)], 1));
        }
        let cand = cand.reshape([batch, group * wp]);
        let idx = match &cand_lens {
            // Rank by the normalised score; carry the sums and lengths of the winners.
            Some(l) => {
                let l = l.clone().reshape([batch, group * wp]);
                let (_, idx) = (cand.clone() / l.clone().powf_scalar(length_penalty)).topk_with_indices(beam_size, 1);
                lens = l.gather(1, idx.clone()).reshape([batch * beam_size]);
                scores = cand.gather(1, idx.clone()).reshape([batch * beam_size]);
                idx
            }
            None => {
                let (top, idx) = cand.topk_with_indices(beam_size, 1); // [batch, beam]
                scores = top.reshape([batch * beam_size]);
                idx
            }
        };
        tokens = child_tokens.reshape([batch, group * wp]).gather(1, idx.clone()).reshape([batch * beam_size]);
        nodes = child_nodes.reshape([batch, group * wp]).gather(1, idx.clone()).reshape([batch * beam_size]);
        if d + 1 < trie.depth() {
            let parent = idx.div_scalar(wp as i64) + user_base.clone().mul_scalar(group as i64).expand([batch, beam_size]);
            state.reorder(parent.reshape([batch * beam_size]));
        }
        group = beam_size;
    }
    if normalise {
        scores = scores / lens.powf_scalar(length_penalty);
    }
    let data = Transaction::default().register(scores).register(nodes).execute();
    let scores: Vec<f32> = data[0].clone().convert::<f32>().try_into_vec().expect("f32 scores");
    let nodes: Vec<i64> = data[1].clone().convert::<i64>().try_into_vec().expect("i64 nodes");
    (0..batch)
        .map(|u| {
            (u * beam_size..(u + 1) * beam_size)
                .filter(|&j| scores[j].is_finite())
                .take(num_return)
                .map(|j| (trie.final_item(nodes[j] as usize), scores[j]))
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{CodeToken, SemanticIndex};
    use crate::model::t5::T5Config;
    use crate::model::vocab::ItemTokens;
    use burn::tensor::Device;

    fn catalogue(ids: &[&[(u8, u32)]]) -> ItemTokens {
        let ids = ids.iter().map(|id| id.iter().map(|&(level, code)| CodeToken::sem(level, code)).collect()).collect();
        ItemTokens::from_index(&SemanticIndex { ids }).unwrap()
    }

    fn model(vocab: usize, device: &Device) -> T5ForConditionalGeneration {
        let config = T5Config::new(vocab)
            .with_d_model(16)
            .with_d_kv(8)
            .with_d_ff(24)
            .with_num_layers(2)
            .with_num_decoder_layers(2)
            .with_num_heads(2)
            .with_relative_attention_num_buckets(8)
            .with_relative_attention_max_distance(16);
        burn::module::Module::to_device(crate::seed::init_seeded(40, |host| config.init(host)), device)
    }

    /// Every item's sequence log-probability for every history, by the uncached forward.
    fn brute_force(m: &T5ForConditionalGeneration, items: &ItemTokens, histories: &[&[u32]], eos: bool, device: &Device) -> Ranked {
        brute_force_scored(m, items, histories, eos, 0.0, device)
    }

    /// [`brute_force`] ranked by `sum / len^alpha`.
    fn brute_force_scored(
        m: &T5ForConditionalGeneration,
        items: &ItemTokens,
        histories: &[&[u32]],
        eos: bool,
        alpha: f32,
        device: &Device,
    ) -> Ranked {
        let n = items.num_items();
        let targets: Vec<u32> = (0..n as u32).collect();
        let dec = items.decoder_input(&targets);
        histories
            .iter()
            .map(|h| {
                let enc = items.encoder_input(&vec![*h; n]).to_device(device);
                let logits = m.forward(enc.input_ids, enc.attention_mask, dec.to_device(device).decoder_input_ids);
                let vocab = logits.dims()[2];
                let logp: Vec<f32> = log_softmax(logits, 2).into_data().try_into_vec().unwrap();
                let mut ranked: Vec<(u32, f32)> = (0..n)
                    .map(|i| {
                        let len = items.tokens(i as u32).len() + eos as usize;
                        let s = (0..len)
                            .map(|p| logp[(i * dec.seq + p) * vocab + dec.labels[i * dec.seq + p] as usize])
                            .sum::<f32>();
                        (i as u32, s / (len as f32).powf(alpha))
                    })
                    .collect();
                ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
                ranked
            })
            .collect()
    }

    fn assert_same_ranking(got: &Ranked, want: &Ranked) {
        assert_eq!(got.len(), want.len());
        for (u, (g, w)) in got.iter().zip(want).enumerate() {
            let items = |r: &Vec<(u32, f32)>| r.iter().map(|x| x.0).collect::<Vec<_>>();
            assert_eq!(items(g), items(w), "user {u}: {g:?} vs {w:?}");
            for (a, b) in g.iter().zip(w) {
                assert!((a.1 - b.1).abs() < 1e-4, "user {u}: {g:?} vs {w:?}");
            }
        }
    }

    const HISTORIES: [&[u32]; 4] = [&[0, 3, 5], &[7], &[], &[1, 2, 3, 4, 5, 6]];

    #[test]
    fn exhaustive_beams_give_the_brute_force_ranking() {
        let device = Device::flex();
        // Uneven fan-out: 3 first codes with 1, 3 and 5 continuations.
        let items = catalogue(&[
            &[(0, 0), (1, 0), (2, 1)],
            &[(0, 1), (1, 0), (2, 0)],
            &[(0, 1), (1, 1), (2, 2)],
            &[(0, 1), (1, 2), (2, 1)],
            &[(0, 2), (1, 0), (2, 0)],
            &[(0, 2), (1, 0), (2, 1)],
            &[(0, 2), (1, 0), (2, 2)],
            &[(0, 2), (1, 1), (2, 0)],
            &[(0, 2), (1, 2), (2, 2)],
        ]);
        let m = model(items.vocab().size(), &device);
        let trie = Trie::new(&items, false, &device).unwrap();
        let input = items.encoder_input(&HISTORIES).to_device(&device);
        let want = brute_force(&m, &items, &HISTORIES, false, &device);
        // beam = catalogue size, and larger (the padding beams must not show).
        assert_same_ranking(&beam_search(&m, &input, &trie, 9, 9), &want);
        assert_same_ranking(&beam_search(&m, &input, &trie, 12, 9), &want);
        // With EOS in the trie the score includes P(EOS).
        let trie = Trie::new(&items, true, &device).unwrap();
        assert_same_ranking(&beam_search(&m, &input, &trie, 9, 9), &brute_force(&m, &items, &HISTORIES, true, &device));
        // Length-normalised scoring, exact too.
        for alpha in [0.5, 1.0] {
            let want = brute_force_scored(&m, &items, &HISTORIES, true, alpha, &device);
            assert_same_ranking(&beam_search_scored(&m, &input, &trie, 9, 9, alpha), &want);
        }
    }

    #[test]
    fn mixed_variable_length_ids_rank_exactly_with_eos() {
        let device = Device::flex();
        // Items mixing the semantic (s) and collaborative (c) codebooks in different orders and
        // lengths, item 0's ID a prefix of item 1's.
        let (s, c) = (CodeToken::sem, CodeToken::cf);
        let ids = vec![
            vec![s(0, 1)],
            vec![s(0, 1), s(1, 0)],
            vec![c(0, 0), c(1, 1), s(0, 1)],
            vec![s(0, 0), c(0, 0)],
            vec![c(0, 1), s(0, 1), s(1, 0), c(1, 1)],
            vec![c(0, 0), c(1, 1), s(0, 0)],
        ];
        let items = ItemTokens::from_index(&SemanticIndex { ids }).unwrap();
        assert!(items.has_collaborative());
        let m = model(items.vocab().size(), &device);
        let trie = Trie::new(&items, true, &device).unwrap();
        let input = items.encoder_input(&[&[0, 4], &[5], &[]]).to_device(&device);
        let want = brute_force(&m, &items, &[&[0, 4], &[5], &[]], true, &device);
        assert_same_ranking(&beam_search(&m, &input, &trie, 6, 6), &want);
        // Under length normalisation too, and there it changes the order (short IDs lose the
        // edge a raw sum gives them).
        let normalised = brute_force_scored(&m, &items, &[&[0, 4], &[5], &[]], true, 1.0, &device);
        assert_same_ranking(&beam_search_scored(&m, &input, &trie, 6, 6, 1.0), &normalised);
        let order = |r: &Ranked| r.iter().map(|u| u.iter().map(|x| x.0).collect::<Vec<_>>()).collect::<Vec<_>>();
        assert_ne!(order(&want), order(&normalised), "the two scorings rank these IDs differently");
    }

    #[test]
    fn narrow_beams_return_distinct_valid_items_with_their_true_scores() {
        let device = Device::flex();
        let ids: Vec<Vec<(u8, u32)>> =
            (0..40u32).map(|i| vec![(0, i % 4), (1, (i / 4) % 5), (2, (i * 7) % 3)]).collect();
        let refs: Vec<&[(u8, u32)]> = ids.iter().map(Vec::as_slice).collect();
        // (i % 4, (i / 4) % 5) is unique for i < 20; the rest repeat it with another 3rd code
        // unless it collides, so keep the distinct IDs only.
        let mut seen = std::collections::HashSet::new();
        let refs: Vec<&[(u8, u32)]> = refs.into_iter().filter(|r| seen.insert(r.to_vec())).collect();
        let items = catalogue(&refs);
        let m = model(items.vocab().size(), &device);
        let trie = Trie::new(&items, false, &device).unwrap();
        let input = items.encoder_input(&HISTORIES).to_device(&device);
        let exact = brute_force(&m, &items, &HISTORIES, false, &device);
        let got = beam_search(&m, &input, &trie, 5, 4);
        for (u, ranked) in got.iter().enumerate() {
            assert_eq!(ranked.len(), 4);
            let mut distinct: Vec<u32> = ranked.iter().map(|r| r.0).collect();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), 4, "duplicates for user {u}: {ranked:?}");
            assert!(ranked.windows(2).all(|w| w[0].1 >= w[1].1), "not sorted: {ranked:?}");
            for &(item, score) in ranked {
                assert!((item as usize) < items.num_items());
                let truth = exact[u].iter().find(|r| r.0 == item).unwrap().1;
                assert!((score - truth).abs() < 1e-4, "item {item}: {score} vs {truth}");
            }
        }
    }

    #[test]
    fn small_catalogues_return_every_item_once() {
        let device = Device::flex();
        let items = catalogue(&[&[(0, 0), (1, 0)], &[(0, 0), (1, 1)], &[(0, 1), (1, 0)]]);
        let m = model(items.vocab().size(), &device);
        let trie = Trie::new(&items, false, &device).unwrap();
        let input = items.encoder_input(&[&[0], &[1, 2]]).to_device(&device);
        for r in beam_search(&m, &input, &trie, 20, 20) {
            let mut got: Vec<u32> = r.iter().map(|x| x.0).collect();
            got.sort();
            assert_eq!(got, vec![0, 1, 2]);
        }
    }
}
