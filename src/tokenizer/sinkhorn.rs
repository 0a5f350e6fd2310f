//! Sinkhorn-balanced code assignment, on the device.
//!
//! Reference: Cuturi, "Sinkhorn Distances" (NeurIPS 2013); as used for semantic IDs by LC-Rec /
//! LETTER / DiscRec (`sinkhorn_algorithm` and `center_distance_for_constraint` in their
//! `models/layers.py`): distances normalised to [-1, 1], `Q = exp(-d / epsilon)`, then
//! alternating row and column normalisations, and the argmax of each row.
//!
//! With epsilon 0.003 the kernel `exp(-d / epsilon)` spans e^-333..e^333, beyond `f32` (the
//! reference uses float64), so the iterations run in the log domain: a normalisation is a
//! subtraction of a log-sum-exp. The reference's constant factors (1/K, 1/B) scale the whole
//! matrix and are undone by the next normalisation, so they do not change the argmax and are
//! left out.

use burn::tensor::{Bool, Int, Tensor, TensorData};

use crate::kernels::quantize::distance_matrix;

/// Log-weight of padded rows: far below any real entry, yet finite (no NaN from `-inf - -inf`).
const PAD_LOG: f32 = -1.0e30;

/// Squared L2 distance between every row of `x` and every codebook row, without gradient.
///
/// # Shapes
/// - x: `[n, d]`
/// - codebook: `[codebook_size, d]`
/// - output: `[n, codebook_size]`
pub fn sq_distances(x: Tensor<2>, codebook: Tensor<2>) -> Tensor<2> {
    distance_matrix(x, codebook).clamp_min(0.0)
}

/// `log(sum(exp(x)))` along `dim`, kept as a size-1 dimension.
fn log_sum_exp<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    let m = x.clone().max_dim(dim);
    let shape = x.dims();
    (x - m.clone().expand(shape)).exp().sum_dim(dim).log() + m
}

/// Balanced assignment of `n` rows to `codebook_size` codes: the argmax of each row of the
/// Sinkhorn plan computed from the distances.
///
/// # Shapes
/// - dist: `[n, codebook_size]`
/// - output: `[n]`
pub fn sinkhorn_assign(dist: Tensor<2>, epsilon: f64, iters: usize) -> Tensor<1, Int> {
    let [n, k] = dist.dims();
    sinkhorn_assign_groups(dist.reshape([1, n, k]), &[n], epsilon, iters).reshape([n])
}

/// [`sinkhorn_assign`] for many independent groups at once. Group `g` has `rows[g]` real rows,
/// the rest of its `seq` rows are padding (their output is meaningless). Normalisation to
/// [-1, 1] and the column sums are per group.
///
/// # Shapes
/// - dist: `[groups, seq, codebook_size]`
/// - output: `[groups, seq]`
pub fn sinkhorn_assign_groups(dist: Tensor<3>, rows: &[usize], epsilon: f64, iters: usize) -> Tensor<2, Int> {
    let [groups, seq, k] = dist.dims();
    assert_eq!(rows.len(), groups, "one row count per group");
    assert!(rows.iter().all(|&r| (1..=seq).contains(&r)), "every group needs 1..={seq} real rows: {rows:?}");
    let device = dist.device();
    let dist = dist.detach();
    let pad: Vec<bool> = rows.iter().flat_map(|&r| (0..seq).map(move |i| i >= r)).collect();
    let pad = Tensor::<3, Bool>::from_data(TensorData::new(pad, [groups, seq, 1]), &device).expand([groups, seq, k]);

    // Per-group normalisation of the real entries to [-1, 1].
    let flat = |t: Tensor<3>| t.reshape([groups, seq * k]);
    let lo = flat(dist.clone().mask_fill(pad.clone(), f32::MAX)).min_dim(1).reshape([groups, 1, 1]);
    let hi = flat(dist.clone().mask_fill(pad.clone(), f32::MIN)).max_dim(1).reshape([groups, 1, 1]);
    let middle = (lo + hi.clone()).div_scalar(2.0);
    let amplitude = hi - middle.clone() + 1e-5;
    let centred = (dist - middle.expand([groups, seq, k])) / amplitude.expand([groups, seq, k]);

    let mut log_q = centred.div_scalar(-epsilon).mask_fill(pad.clone(), PAD_LOG);
    for _ in 0..iters {
        // Each row (item) sums to one, then each column (code) within its group.
        log_q = log_q.clone() - log_sum_exp(log_q, 2).expand([groups, seq, k]);
        log_q = log_q.mask_fill(pad.clone(), PAD_LOG);
        log_q = log_q.clone() - log_sum_exp(log_q, 1).expand([groups, seq, k]);
        log_q = log_q.mask_fill(pad.clone(), PAD_LOG);
    }
    log_q.argmax(2).reshape([groups, seq])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::quantize::nearest_code;
    use burn::tensor::Device;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    fn counts(idx: Tensor<1, Int>, k: usize) -> Vec<usize> {
        let mut c = vec![0; k];
        for i in idx.into_data().try_into_vec_as::<i64>().unwrap() {
            c[i as usize] += 1;
        }
        c
    }

    /// 128 points near code 0 of 8 codes: argmin puts all of them there, Sinkhorn spreads
    /// them evenly.
    fn skewed(device: &Device) -> (Tensor<2>, Tensor<2>) {
        let mut rng = StdRng::seed_from_u64(3);
        let x: Vec<f32> = (0..128 * 2).map(|_| rng.random_range(-0.2..0.2)).collect();
        let c: Vec<f32> = (0..8).flat_map(|j| [1.0 + j as f32, 0.5 * j as f32]).collect();
        let mut c = c;
        c[0] = 0.0;
        c[1] = 0.0;
        (
            Tensor::from_data(TensorData::new(x, [128, 2]), device),
            Tensor::from_data(TensorData::new(c, [8, 2]), device),
        )
    }

    #[test]
    fn sinkhorn_balances_assignments() {
        let device = Device::flex();
        let (x, c) = skewed(&device);
        let plain = counts(nearest_code(x.clone(), c.clone()).index, 8);
        assert_eq!(plain[0], 128, "{plain:?}");
        let balanced = counts(sinkhorn_assign(sq_distances(x, c), 0.003, 50), 8);
        assert!(balanced.iter().all(|&n| (12..=20).contains(&n)), "{balanced:?}");
    }

    #[test]
    fn distances_match_the_definition() {
        let device = Device::flex();
        let x = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 1.0, 3.0, 4.0], [2, 2]), &device);
        let c = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 0.0, 1.0, 1.0, 3.0, 5.0], [3, 2]), &device);
        let d: Vec<f32> = sq_distances(x, c).into_data().try_into_vec_as().unwrap();
        assert_eq!(d, vec![1.0, 1.0, 25.0, 25.0, 13.0, 1.0]);
    }

    #[test]
    fn padded_groups_match_separate_calls() {
        let device = Device::flex();
        let mut rng = StdRng::seed_from_u64(9);
        let (k, sizes) = (16, [5usize, 2, 7]);
        let seq = 7;
        let mut padded = vec![0.0f32; sizes.len() * seq * k];
        let mut expected = Vec::new();
        for (g, &s) in sizes.iter().enumerate() {
            let d: Vec<f32> = (0..s * k).map(|_| rng.random_range(0.0..4.0)).collect();
            padded[g * seq * k..g * seq * k + s * k].copy_from_slice(&d);
            let one = sinkhorn_assign(Tensor::from_data(TensorData::new(d, [s, k]), &device), 0.003, 50);
            expected.push(one.into_data().try_into_vec_as::<i64>().unwrap());
        }
        let all = sinkhorn_assign_groups(Tensor::from_data(TensorData::new(padded, [3, seq, k]), &device), &sizes, 0.003, 50);
        let all: Vec<i64> = all.into_data().try_into_vec_as().unwrap();
        for (g, &s) in sizes.iter().enumerate() {
            assert_eq!(&all[g * seq..g * seq + s], &expected[g][..], "group {g}");
        }
    }
}
