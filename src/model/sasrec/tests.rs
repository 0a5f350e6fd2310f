//! SASRec invariants on the CPU backend that hold for any initial weights: causality, padding
//! and batch independence, the losses against their definitions, gradients reaching every
//! parameter, and a few Adam steps lowering the loss on a fixed batch.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, Tolerance};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;

fn tiny(loss: SasRecLoss) -> SasRecConfig {
    SasRecConfig { hidden: 16, blocks: 2, heads: 2, max_len: 6, d_ff: 24, dropout: 0.0, loss, negatives: 3 }
}

/// Initialised as the trainer does: on the CPU backend from a seed, then moved (in training
/// mode on an autodiff device).
fn model(c: &SasRecConfig, items: usize, device: &Device) -> SasRec {
    let model = crate::seed::init_seeded(3, |host| c.init(items, host)).to_device(device);
    if device.is_autodiff() { model.train() } else { model }
}

fn rows(x: Tensor<3>) -> Vec<f32> {
    x.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn later_items_and_padding_do_not_change_earlier_states() {
    let device = Device::flex();
    let m = model(&tiny(SasRecLoss::Ce), 20, &device);
    let a = m.forward(&SequenceInput::new(&[&[3, 4, 5, 6]], 6, 0).to_device(&device)); // [1, 4, 16]
    let b = m.forward(&SequenceInput::new(&[&[3, 4, 5, 9]], 6, 0).to_device(&device));
    let (a, b) = (rows(a), rows(b));
    assert_eq!(&a[..3 * 16], &b[..3 * 16], "the first three states cannot see the fourth item");
    assert_ne!(&a[3 * 16..], &b[3 * 16..]);
    // The same history scores the same alone, padded wider, or beside a longer row.
    let alone = m.scores(&SequenceInput::new(&[&[7, 8]], 6, 0).to_device(&device));
    let padded = m.scores(&SequenceInput::new(&[&[7, 8]], 6, 6).to_device(&device));
    let batched = m.scores(&SequenceInput::new(&[&[1, 2, 3, 4, 5], &[7, 8]], 6, 0).to_device(&device));
    let tol = Tolerance::rel_abs(1e-5, 1e-6);
    padded.into_data().assert_approx_eq::<f32>(&alone.clone().into_data(), tol);
    batched.slice([1..2, 0..20]).into_data().assert_approx_eq::<f32>(&alone.into_data(), tol);
}

#[test]
fn losses_match_their_definitions_on_the_scores() {
    let device = Device::flex();
    let m = model(&tiny(SasRecLoss::Ce), 12, &device);
    let mut rng = StdRng::seed_from_u64(5);
    // One target per row: the positions are the rows' last columns, so scores() applies.
    let t = TrainingInput::new(&[&[1, 2, 3], &[4, 5]], 6, 0, 12, 2, &mut rng);
    let history = SequenceInput::new(&[&[1, 2], &[4]], 6, 0).to_device(&device);
    let x = t.input.to_device(&device);
    let s: Vec<f32> = m.scores(&history).into_data().try_to_vec().unwrap(); // [2, 12]
    assert_eq!(t.targets.targets, vec![2, 3, 5]);
    // CE over the two last positions alone equals -log softmax of the target from scores().
    let last = TrainingTargets { positions: vec![t.targets.positions[1], t.targets.positions[2]], targets: vec![3, 5], negatives: vec![] };
    let row_ce = |r: usize, target: usize| {
        let row = &s[r * 12..(r + 1) * 12];
        let max = row.iter().fold(f32::MIN, |a, &b| a.max(b));
        let lse = max + row.iter().map(|v| (v - max).exp()).sum::<f32>().ln();
        lse - row[target]
    };
    let ce: f32 = m.ce_loss(&x, &last).into_scalar();
    let want = (row_ce(0, 3) + row_ce(1, 5)) / 2.0;
    assert!((ce - want).abs() < 1e-4, "{ce} vs {want}");
    let neg = TrainingTargets { negatives: vec![7, 8, 9, 10], ..last };
    let ls = |v: f32| -(1.0 + (-v).exp()).ln();
    let row_bce = |r: usize, target: usize, n: [usize; 2]| {
        let row = &s[r * 12..(r + 1) * 12];
        -ls(row[target]) - ls(-row[n[0]]) - ls(-row[n[1]])
    };
    let bce: f32 = m.bce_loss(&x, &neg).into_scalar();
    let want = (row_bce(0, 3, [7, 8]) + row_bce(1, 5, [9, 10])) / 2.0;
    assert!((bce - want).abs() < 1e-4, "{bce} vs {want}");
}

struct CountGrads<'a>(&'a GradientsParams, usize, usize);
impl ModuleVisitor for CountGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.2 += 1;
        if let Some(g) = self.0.get::<D>(param.id) {
            if g.abs().sum().into_scalar::<f32>() > 0.0 {
                self.1 += 1;
            }
        }
    }
}

#[test]
fn both_losses_reach_every_parameter_and_fall_under_adam() {
    let device = Device::flex().autodiff();
    for loss in [SasRecLoss::Ce, SasRecLoss::Bce] {
        let c = tiny(loss);
        let mut m = model(&c, 15, &device).train();
        let mut rng = StdRng::seed_from_u64(9);
        let seqs: [&[u32]; 3] = [&[1, 2, 3, 4, 5, 6, 7], &[8, 9, 10], &[11, 12, 13, 14]];
        let t = TrainingInput::new(&seqs, c.max_len, 0, 15, c.negatives, &mut rng);
        let x = t.input.to_device(&device);
        let loss_of = |m: &SasRec| match loss {
            SasRecLoss::Ce => m.ce_loss(&x, &t.targets),
            SasRecLoss::Bce => m.bce_loss(&x, &t.targets),
        };
        let first = loss_of(&m);
        let grads = GradientsParams::from_grads(first.clone().backward(), &m);
        let mut count = CountGrads(&grads, 0, 0);
        m.visit(&mut count);
        // A key bias shifts all scores of a query alike, which the softmax ignores: its
        // gradient is zero up to rounding, so one parameter per block may show none.
        assert!(count.1 + c.blocks >= count.2, "{loss}: {} of {} parameters get a gradient", count.1, count.2);
        let first: f32 = first.into_scalar();
        let mut optim = AdamConfig::new().init();
        for _ in 0..30 {
            let l = loss_of(&m);
            let g = GradientsParams::from_grads(l.backward(), &m);
            m = optim.step(1e-2, m, g);
        }
        let last: f32 = loss_of(&m).into_scalar();
        assert!(last < 0.5 * first, "{loss}: loss {first} -> {last}");
    }
}
