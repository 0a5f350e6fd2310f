//! Codebook quantization: for each row of `x`, the nearest codebook entry (smallest squared L2
//! distance, the smallest index among equal distances) and that distance.
//!
//! [`nearest_code`] is what the tokenizer calls; [`nearest_code_reference`] is the pure-Burn
//! path (materialises the `[n, codebook_size]` distance matrix), used on backends without the
//! custom kernel and as the reference in tests.

use burn::tensor::{Int, Tensor};

/// The nearest code of every row.
#[derive(Debug, Clone)]
pub struct NearestCode {
    /// `[n]` index of the nearest codebook row.
    pub index: Tensor<1, Int>,
    /// `[n]` squared L2 distance to it.
    pub dist: Tensor<1>,
}

/// Nearest codebook entry of every row of `x`. No gradient flows through it: the result is a
/// discrete choice (the straight-through estimator is applied by the caller).
///
/// # Shapes
/// - x: `[n, d]`
/// - codebook: `[codebook_size, d]`
/// - output: `[n]` indices and distances
pub fn nearest_code(x: Tensor<2>, codebook: Tensor<2>) -> NearestCode {
    nearest_code_reference(x, codebook)
}

/// Pure-Burn reference of [`nearest_code`]: `|x|^2 - 2 x c^T + |c|^2`, then argmin per row.
///
/// # Shapes
/// - x: `[n, d]`
/// - codebook: `[codebook_size, d]`
/// - output: `[n]` indices and distances
pub fn nearest_code_reference(x: Tensor<2>, codebook: Tensor<2>) -> NearestCode {
    let [n, d] = x.dims();
    let [k, dc] = codebook.dims();
    assert_eq!(d, dc, "x has {d} columns, the codebook {dc}");
    let (x, codebook) = (x.detach(), codebook.detach());
    let x2 = x.clone().powi_scalar(2).sum_dim(1); // [n, 1]
    let c2 = codebook.clone().powi_scalar(2).sum_dim(1).reshape([1, k]); // [1, k]
    let dist = x2.expand([n, k]) - x.matmul(codebook.transpose()).mul_scalar(2.0) + c2.expand([n, k]);
    let (dist, index) = dist.min_dim_with_indices(1); // [n, 1] each
    NearestCode { index: index.reshape([n]), dist: dist.clamp_min(0.0).reshape([n]) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn reference_picks_the_nearest_and_the_first_of_ties() {
        let device = Device::flex();
        let x = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 0.0, 2.0, 2.0, 5.0, 0.0], [3, 2]), &device);
        // Rows 1 and 2 are equal: row 0 of x is as near to both, and must get index 1.
        let c = Tensor::<2>::from_data(TensorData::new(vec![3.0f32, 3.0, 0.0, 1.0, 0.0, 1.0, 4.0, 0.0], [4, 2]), &device);
        let out = nearest_code_reference(x, c);
        let idx: Vec<i64> = out.index.into_data().try_into_vec_as().unwrap();
        let dist: Vec<f32> = out.dist.into_data().try_into_vec_as().unwrap();
        assert_eq!(idx, vec![1, 0, 3]);
        assert_eq!(dist, vec![1.0, 2.0, 1.0]);
    }
}
