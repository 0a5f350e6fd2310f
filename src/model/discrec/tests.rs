//! Tests of the DiscRec block on the CPU backend: padding and variable-length IDs, the ablation
//! switches, gradients to every parameter, decoder causality and dropout.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Gradients;
use burn::tensor::{Device, Tensor, Tolerance};

use super::*;
use crate::data::{CodeToken, SemanticIndex};
use crate::model::vocab::{EncoderBatch, ItemTokens};
use crate::seed::{init_seeded, normal};

const D: usize = 16;

/// Four items with IDs of 3, 2, 1 and 3 tokens.
fn items() -> ItemTokens {
    let id = |v: &[(u8, u32)]| v.iter().map(|&(level, code)| CodeToken::sem(level, code)).collect();
    let index = SemanticIndex {
        ids: vec![id(&[(0, 1), (1, 2), (2, 0)]), id(&[(0, 2), (1, 1)]), id(&[(0, 0)]), id(&[(0, 1), (1, 0), (2, 1)])],
    };
    ItemTokens::from_index(&index).unwrap()
}

fn config() -> DiscRecConfig {
    DiscRecConfig { d_ff: 32, dropout: 0.0, ..DiscRecConfig::default() }
}

/// The blocks of `c` for IDs of up to 3 tokens, initialised from `seed`, on `device` (in
/// training mode on an autodiff device).
fn init(c: DiscRecConfig, seed: u64, device: &Device) -> DiscRec {
    let model = init_seeded(seed, |host| c.init(D, 3, None, host)).to_device(device);
    if device.is_autodiff() { model.train() } else { model }
}

fn batch(histories: &[&[u32]], device: &Device) -> EncoderBatch {
    items().encoder_input(histories).to_device(device)
}

fn embeds(batch: &EncoderBatch, seed_table: &Tensor<2>) -> Tensor<3> {
    let [b, s] = batch.input_ids.dims();
    seed_table.clone().select(0, batch.input_ids.clone().reshape([b * s])).reshape([b, s, D])
}

fn table(device: &Device) -> Tensor<2> {
    normal([items().vocab().size(), D], 1, device)
}

/// Decoder prefix ids for embeddings `e` (semantic tokens only: the block does not read them).
fn ids(e: &Tensor<3>) -> Tensor<2, burn::tensor::Int> {
    let [b, s, _] = e.dims();
    Tensor::zeros([b, s], &e.device())
}

fn max_diff(a: Tensor<3>, b: Tensor<3>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

#[test]
fn left_padding_leaves_real_tokens_unchanged_and_items_stay_apart() {
    let device = Device::flex();
    let model = init(config(), 2, &device);
    let t = table(&device);
    // History [0, 1, 2] alone (7 tokens) and next to a longer one (left-padded by 2).
    let alone = batch(&[&[0, 1, 2]], &device);
    let padded = batch(&[&[0, 1, 2], &[3, 0, 1]], &device);
    assert_eq!(padded.input_ids.dims(), [2, 9]);
    let a = model.encoder_input(embeds(&alone, &t), &alone);
    let p = model.encoder_input(embeds(&padded, &t), &padded);
    let p0 = p.embeds.clone().slice([0..1, 2..9]);
    p0.into_data().assert_approx_eq::<f32>(&a.embeds.clone().into_data(), Tolerance::rel_abs(1e-5, 1e-5));
    let g = p.gate_sem.expect("gate on").slice([0..1, 2..9]);
    g.into_data().assert_approx_eq::<f32>(&a.gate_sem.unwrap().into_data(), Tolerance::rel_abs(1e-5, 1e-5));

    // Perturbing item 0 (slot 4, tokens 0..3) moves only its own tokens; perturbing the last
    // item (item 2, one token at 5) moves it and EOS (6), not item 1 (tokens 3..5).
    let e = embeds(&alone, &t);
    let bump = |range: std::ops::Range<usize>| {
        let e2 = e.clone().slice_assign([0..1, range.clone(), 0..D], Tensor::ones([1, range.len(), D], &device));
        model.encoder_input(e2, &alone).embeds
    };
    let moved = |out: &Tensor<3>, r: std::ops::Range<usize>| max_diff(out.clone().slice([0..1, r.clone()]), a.embeds.clone().slice([0..1, r]));
    let first = bump(0..1);
    assert!(moved(&first, 0..3) > 1e-6);
    assert_eq!(moved(&first, 3..7), 0.0);
    let last = bump(5..6);
    assert!(moved(&last, 6..7) > 1e-6, "EOS sees the last item");
    assert_eq!(moved(&last, 0..5), 0.0);
}

#[test]
fn ablation_switches_build_and_change_the_block() {
    let device = Device::flex();
    let b = batch(&[&[0, 1, 2], &[3]], &device);
    let e = embeds(&b, &table(&device));
    let full = init(config(), 3, &device);
    assert!(full.encoder.position.is_some() && full.encoder.gate.is_some() && full.decoder.is_some());
    let base = full.encoder_input(e.clone(), &b).embeds;

    // Each switch, on the same weights: the parts go away and the output changes.
    let mut no_pos = full.clone();
    no_pos.encoder.position = None;
    assert!(max_diff(no_pos.encoder_input(e.clone(), &b).embeds, base.clone()) > 1e-4);
    let mut sum = full.clone();
    sum.encoder.gate = None;
    let out = sum.encoder_input(e.clone(), &b);
    assert!(out.gate_sem.is_none());
    assert!(max_diff(out.embeds, base.clone()) > 1e-4);

    let c = init(DiscRecConfig { collaborative: false, ..config() }, 4, &device);
    assert!(c.encoder.branch.is_none() && c.encoder.position.is_none() && c.encoder.gate.is_none());
    let out = c.encoder_input(e.clone(), &b);
    assert_eq!(max_diff(out.embeds, e.clone()), 0.0, "without the collaborative branch the block is the identity");
    assert!(out.gate_sem.is_none());

    let p = init(DiscRecConfig { position: false, gate: false, ..config() }, 5, &device);
    assert!(p.encoder.position.is_none() && p.encoder.gate.is_none() && p.encoder.branch.is_some());

    let enc_only = init(DiscRecConfig { decoder: false, ..config() }, 6, &device);
    let prefix = normal([2, 4, D], 7, &device);
    assert_eq!(max_diff(enc_only.decoder_input(prefix.clone(), &ids(&prefix)).embeds, prefix.clone()), 0.0);
    assert!(max_diff(full.decoder_input(prefix.clone(), &ids(&prefix)).embeds, prefix) > 1e-4);
}

#[test]
fn the_gate_weights_are_a_softmax_of_the_two_scores() {
    let device = Device::flex();
    let b = batch(&[&[1, 2], &[0, 1, 2]], &device);
    let e = embeds(&b, &table(&device));
    let model = init(config(), 8, &device);
    let out = model.encoder_input(e.clone(), &b);
    let g = out.gate_sem.clone().unwrap();

    // The two branches and their scores, computed here from the block's parts:
    // s_sem = e . w_sem, s_col = c . w_col with c the collaborative branch of LN(e + v).
    let block = &model.encoder;
    let x1 = block.norm.as_ref().unwrap().forward(e.clone() + block.position.as_ref().unwrap().forward(b.item_pos.clone().unwrap()));
    let c = block.branch.as_ref().unwrap().forward_items(x1, b.item_slot.clone().unwrap(), 3);
    let w = block.gate.as_ref().unwrap().weight.val();
    let [batch, seq, _] = e.dims();
    let score = |x: Tensor<3>, row: usize| (x * w.clone().slice([row..row + 1]).reshape([1, 1, D])).sum_dim(2).reshape([batch, seq]);
    let (s_sem, s_col) = (score(e.clone(), 0), score(c.clone(), 1));
    // The softmax over the two scores, written out (the block computes it as a sigmoid).
    let m = s_sem.clone().max_pair(s_col.clone());
    let (a_sem, a_col) = ((s_sem - m.clone()).exp(), (s_col - m).exp());
    let softmax_sem = a_sem.clone() / (a_sem + a_col);
    let tol = Tolerance::rel_abs(1e-5, 1e-6);
    g.clone().into_data().assert_approx_eq::<f32>(&softmax_sem.clone().into_data(), tol);
    // The fused embedding is g e + (1 - g) c (no dropout here).
    let g3 = softmax_sem.reshape([batch, seq, 1]);
    let fused = e * g3.clone() + c * (g3.ones_like() - g3);
    out.embeds.clone().into_data().assert_approx_eq::<f32>(&fused.into_data(), tol);

    let g: Vec<f32> = g.into_data().try_to_vec().unwrap();
    assert!(g.iter().all(|x| (0.0..=1.0).contains(x)), "a gate weight is a probability: {g:?}");
    // Pooled over real tokens only: [sum, count].
    let pooled: Vec<f32> = out.gate_sem_sum(Some(b.attention_mask.clone())).unwrap().into_data().try_to_vec().unwrap();
    let mask: Vec<f32> = b.attention_mask.clone().into_data().try_to_vec().unwrap();
    let want: f32 = g.iter().zip(&mask).map(|(g, m)| g * m).sum();
    assert!((pooled[0] - want).abs() < 1e-5 && pooled[1] == mask.iter().sum::<f32>(), "{pooled:?}");
}

#[test]
fn decoder_attention_is_causal() {
    let device = Device::flex();
    let model = init(config(), 9, &device);
    let e = normal([2, 4, D], 10, &device);
    let base = model.decoder_input(e.clone(), &ids(&e)).embeds;
    let e2 = e.slice_assign([0..2, 2..3, 0..D], Tensor::ones([2, 1, D], &device));
    let out = model.decoder_input(e2.clone(), &ids(&e2)).embeds;
    assert_eq!(max_diff(out.clone().slice([0..2, 0..2]), base.clone().slice([0..2, 0..2])), 0.0);
    assert!(max_diff(out.slice([0..2, 3..4]), base.slice([0..2, 3..4])) > 1e-6);
}

/// The `|grad|` sum of every float parameter.
struct GradSums<'a> {
    grads: &'a Gradients,
    sums: Vec<Option<f32>>,
}

impl ModuleVisitor for GradSums<'_> {
    fn visit_float<const N: usize>(&mut self, param: &Param<Tensor<N>>) {
        self.sums.push(param.val().grad(self.grads).map(|g| g.abs().sum().into_scalar::<f32>()));
    }
}

#[test]
fn gradients_reach_every_parameter_and_dropout_acts_in_training() {
    let device = Device::flex().autodiff();
    let model = init(DiscRecConfig { d_ff: 32, ..DiscRecConfig::default() }, 11, &device);
    let b = batch(&[&[0, 1, 2], &[3]], &device);
    let e = embeds(&b, &table(&device)).require_grad();
    let prefix = normal([2, 4, D], 12, &device);
    let enc = model.encoder_input(e.clone(), &b).embeds;
    let again = model.encoder_input(e.clone(), &b).embeds;
    assert!(max_diff(enc.clone(), again) > 1e-4, "dropout makes training passes differ");
    let dec = model.decoder_input(prefix.clone(), &ids(&prefix)).embeds;
    let proj = normal(enc.dims(), 13, &device);
    let grads = ((enc * proj).sum() + dec.powi_scalar(2).sum()).backward();
    let mut sums = GradSums { grads: &grads, sums: Vec::new() };
    model.visit(&mut sums);
    // Per block: position, 2 norms x 2, q/k/v/ff_in/ff_out x 2, gate = 16.
    assert_eq!(sums.sums.len(), 32);
    for (i, s) in sums.sums.iter().enumerate() {
        assert!(s.is_some_and(|s| s > 0.0), "parameter {i} gets no gradient: {s:?}");
    }
    assert!(e.grad(&grads).is_some());
}
