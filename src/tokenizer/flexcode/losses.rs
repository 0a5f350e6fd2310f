//! FlexCode's objectives as plain tensor functions (SPEC section 5; every formula is ours):
//! InfoNCE with in-batch negatives (alignment, transitions), the soft level weights of the
//! router, the fused latent, load balance and smoothness.
//!
//! InfoNCE follows CLIP (Radford et al., 2021): rows are L2-normalised, logits are cosine
//! similarities over a temperature, the positives are on the diagonal.

use burn::tensor::activation::{log_softmax, sigmoid};
use burn::tensor::{Tensor, TensorData};

use crate::kernels::matmul::matmul;

/// Rows scaled to unit L2 norm (zero rows stay zero).
///
/// # Shapes
/// - x: `[batch, d]`
/// - output: `[batch, d]`
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).add_scalar(1e-12).sqrt(); // [batch, 1]
    x / norm
}

/// Cosine similarities of every row of `a` with every row of `b`, over `temperature`.
///
/// # Shapes
/// - a: `[batch, d]`, b: `[batch, d]`
/// - output: `[batch, batch]`
pub fn cosine_logits(a: Tensor<2>, b: Tensor<2>, temperature: f64) -> Tensor<2> {
    matmul(l2_normalize(a), l2_normalize(b).transpose()).div_scalar(temperature)
}

/// `[1]` mean cross-entropy of the diagonal, softmax over `dim` (1: each row of `a` picks its
/// `b`; 0: each `b` picks its `a`).
fn diagonal_nce(logits: Tensor<2>, dim: usize) -> Tensor<1> {
    let [batch, _] = logits.dims();
    let eye = Tensor::<2>::eye(batch, &logits.device());
    (log_softmax(logits, dim) * eye).sum().neg().div_scalar(batch as f64)
}

/// `[1]` InfoNCE of `a` predicting `b` (row i of `b` is the positive of row i of `a`, the other
/// rows are negatives).
///
/// # Shapes
/// - a: `[batch, d]`, b: `[batch, d]`
pub fn info_nce(a: Tensor<2>, b: Tensor<2>, temperature: f64) -> Tensor<1> {
    diagonal_nce(cosine_logits(a, b, temperature), 1)
}

/// `[1]` symmetric InfoNCE: the mean of `a` predicting `b` and `b` predicting `a`.
///
/// # Shapes
/// - a: `[batch, d]`, b: `[batch, d]`
pub fn symmetric_info_nce(a: Tensor<2>, b: Tensor<2>, temperature: f64) -> Tensor<1> {
    let logits = cosine_logits(a, b, temperature);
    (diagonal_nce(logits.clone(), 1) + diagonal_nce(logits, 0)).div_scalar(2.0)
}

/// The soft level weights of CF shares `a` for a budget of `levels` tokens:
/// `wcf_il = sigmoid((a_i L - l + 0.5) / tau)` and `wsem_il = sigmoid(((1 - a_i) L - l + 0.5) /
/// tau)`, l = 1..L. As tau goes to 0 they become the indicators of `l <= round(a_i L)` and
/// `l <= L - round(a_i L)`, the levels the final ID uses. Returns (wcf, wsem).
///
/// # Shapes
/// - a: `[batch]`
/// - output: `[batch, levels]` each
pub fn level_weights(a: Tensor<1>, levels: usize, tau: f64) -> (Tensor<2>, Tensor<2>) {
    let [batch] = a.dims();
    let offsets: Vec<f32> = (1..=levels).map(|l| l as f32 - 0.5).collect();
    let offsets = Tensor::<2>::from_data(TensorData::new(offsets, [1, levels]), &a.device());
    let a = a.reshape([batch, 1]);
    let cf = sigmoid((a.clone().mul_scalar(levels as f64) - offsets.clone()).div_scalar(tau));
    let sem = sigmoid((a.neg().add_scalar(1.0).mul_scalar(levels as f64) - offsets).div_scalar(tau));
    (cf, sem)
}

/// The hard level weights of a fixed split: CF levels `1..=k`, semantic levels `1..=L-k`.
/// Returns (wcf, wsem), `[batch, levels]` each.
pub fn fixed_level_weights(batch: usize, levels: usize, k: usize, device: &burn::tensor::Device) -> (Tensor<2>, Tensor<2>) {
    let row = |on: usize| -> Vec<f32> { (0..levels).map(|l| if l < on { 1.0 } else { 0.0 }).collect() };
    let w = |on| Tensor::<2>::from_data(TensorData::new(row(on), [1, levels]), device).expand([batch, levels]);
    (w(k), w(levels - k))
}

/// `sum_l w_il * q_il`: the levels' contributions weighted per item.
///
/// # Shapes
/// - contributions: `[batch, levels, d]`
/// - weights: `[batch, levels]`
/// - output: `[batch, d]`
pub fn weighted_levels(contributions: Tensor<3>, weights: Tensor<2>) -> Tensor<2> {
    let [batch, levels, d] = contributions.dims();
    assert_eq!(weights.dims(), [batch, levels], "one weight per item and level");
    (contributions * weights.reshape([batch, levels, 1])).sum_dim(1).reshape([batch, d])
}

/// `[1]` load balance `(mean_i a_i - rho)^2`.
pub fn balance(a: Tensor<1>, rho: f64) -> Tensor<1> {
    a.mean().sub_scalar(rho).powi_scalar(2)
}

/// `[1]` smoothness: the mean of `(a_{i+1} - a_i)^2` over neighbours in `order` (items sorted
/// by training count); 0 for fewer than two items.
///
/// # Shapes
/// - a: `[items]`, order: `[items]` (a permutation)
pub fn smoothness(a: Tensor<1>, order: Tensor<1, burn::tensor::Int>) -> Tensor<1> {
    let [n] = a.dims();
    if n < 2 {
        return a.sum().mul_scalar(0.0);
    }
    let sorted = a.select(0, order);
    (sorted.clone().slice(1..n) - sorted.slice(0..n - 1)).powi_scalar(2).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Int};

    fn t2(v: &[f32], shape: [usize; 2], d: &Device) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v.to_vec(), shape), d)
    }

    fn vec1(t: Tensor<1>) -> Vec<f32> {
        t.into_data().try_into_vec_as().unwrap()
    }

    #[test]
    fn info_nce_matches_a_hand_computation() {
        let d = Device::flex();
        // Orthogonal unit rows, positives identical: logits are 1/T on the diagonal, 0 off it.
        let a = t2(&[2.0, 0.0, 0.0, 3.0], [2, 2], &d);
        let t = 0.5;
        let expected = -((2.0f64).exp() / ((2.0f64).exp() + 1.0)).ln();
        let got = vec1(info_nce(a.clone(), a.clone(), t))[0] as f64;
        assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
        let sym = vec1(symmetric_info_nce(a.clone(), a.clone(), t))[0] as f64;
        assert!((sym - expected).abs() < 1e-5);
        // Swapped positives make it larger.
        let b = t2(&[0.0, 1.0, 1.0, 0.0], [2, 2], &d);
        assert!(vec1(info_nce(a, b, t))[0] as f64 > expected + 1.0);
    }

    #[test]
    fn level_weights_harden_to_the_rounded_split() {
        let d = Device::flex();
        let a = Tensor::<1>::from_data(TensorData::new(vec![0.0f32, 0.3, 0.5, 1.0], [4]), &d);
        let (cf, sem) = level_weights(a, 4, 0.01);
        let cf: Vec<f32> = cf.into_data().try_into_vec_as().unwrap();
        let sem: Vec<f32> = sem.into_data().try_into_vec_as().unwrap();
        let round = |v: &[f32]| v.iter().map(|x| x.round() as u8).collect::<Vec<_>>();
        // a = 0.3: round(1.2) = 1 CF level, 3 semantic levels.
        assert_eq!(round(&cf), vec![0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1]);
        assert_eq!(round(&sem), vec![1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0]);
        // At tau = 1 the weights are soft but ordered: earlier levels weigh more.
        let (cf, _) = level_weights(Tensor::<1>::from_data(TensorData::new(vec![0.5f32], [1]), &d), 4, 1.0);
        let cf: Vec<f32> = cf.into_data().try_into_vec_as().unwrap();
        assert!(cf.windows(2).all(|w| w[0] > w[1]) && cf[1] > 0.5 && cf[2] < 0.5, "{cf:?}");
        let (cf, sem) = fixed_level_weights(2, 3, 1, &d);
        assert_eq!(cf.into_data().try_into_vec_as::<f32>().unwrap(), vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
        assert_eq!(sem.into_data().try_into_vec_as::<f32>().unwrap(), vec![1.0, 1.0, 0.0, 1.0, 1.0, 0.0]);
    }

    #[test]
    fn weighted_levels_balance_and_smoothness() {
        let d = Device::flex();
        let q0 = t2(&[1.0, 0.0, 2.0, 0.0], [2, 2], &d);
        let q1 = t2(&[0.0, 1.0, 0.0, 3.0], [2, 2], &d);
        let w = t2(&[1.0, 0.5, 0.0, 1.0], [2, 2], &d);
        let f: Vec<f32> = weighted_levels(Tensor::stack(vec![q0, q1], 1), w).into_data().try_into_vec_as().unwrap();
        assert_eq!(f, vec![1.0, 0.5, 0.0, 3.0]);
        let a = Tensor::<1>::from_data(TensorData::new(vec![0.9f32, 0.1, 0.5], [3]), &d);
        assert!((vec1(balance(a.clone(), 0.5))[0] - 0.0).abs() < 1e-7);
        assert!((vec1(balance(a.clone(), 0.2))[0] - 0.09).abs() < 1e-6);
        // Order 1, 2, 0: a = 0.1, 0.5, 0.9, steps of 0.4.
        let order = Tensor::<1, Int>::from_ints(TensorData::new(vec![1i64, 2, 0], [3]), &d);
        assert!((vec1(smoothness(a.clone(), order))[0] - 0.16).abs() < 1e-6);
        let one = Tensor::<1>::from_data(TensorData::new(vec![0.3f32], [1]), &d);
        let order = Tensor::<1, Int>::from_ints(TensorData::new(vec![0i64], [1]), &d);
        assert_eq!(vec1(smoothness(one, order)), vec![0.0]);
    }
}
