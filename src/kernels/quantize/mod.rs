//! Codebook quantization: for each row of `x`, the nearest codebook entry (smallest squared L2
//! distance, the smallest index among equal distances) and that distance.
//!
//! [`nearest_code`] is what the tokenizer calls: on a wgpu device it runs the custom kernel
//! `shaders/quantize.wgsl` (one pass over the codebook for several rows of `x` held in registers,
//! no `[n, codebook_size]` matrix in device memory); elsewhere (the CPU backend, other cubecl
//! runtimes) it runs [`nearest_code_reference`], the pure-Burn path that materialises the
//! distance matrix. The layout follows Burn's `examples/custom-wgpu-kernel`: the
//! [`QuantizeBackend`] extension trait here, its cubecl implementation in `launch.rs`.

mod launch;

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::Autodiff;
use burn::backend::fusion::custom::TensorSpec;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{backend_extension, AutodiffBackend, Dispatch};
use burn::tensor::{DType, Device, Int, Shape, Tensor};

/// Backends with a nearest-code kernel: the cubecl backend (wgpu runtime), fused or not, and
/// autodiff over them (a pass-through: no gradient flows through a discrete choice).
#[backend_extension(Cube, Fusion, Autodiff)]
pub trait QuantizeBackend: burn::backend::Backend {
    /// The distance (`f32`) and index (`i32`) of the nearest codebook row of every row of `x`.
    ///
    /// # Shapes
    /// - x: `[n, d]`
    /// - codebook: `[codebook_size, d]`
    /// - output: `([n], [n])`
    #[fusion(meta = nearest_code_meta)]
    fn nearest_code(x: FloatTensor<Self>, codebook: FloatTensor<Self>) -> (FloatTensor<Self>, IntTensor<Self>);
}

/// Output metadata for the lazy (fused) path: an `f32` and an `i32` vector of one entry per row.
fn nearest_code_meta(x: &TensorSpec, _codebook: &TensorSpec) -> (TensorSpec, TensorSpec) {
    let n = x.shape[0];
    (TensorSpec::new(Shape::new([n]), DType::F32), TensorSpec::new(Shape::new([n]), DType::I32))
}

impl<B: QuantizeBackend, C: CheckpointStrategy> QuantizeBackend for Autodiff<B, C> {
    fn nearest_code(x: FloatTensor<Self>, codebook: FloatTensor<Self>) -> (FloatTensor<Self>, IntTensor<Self>) {
        // Untracked outputs: the caller applies the straight-through estimator itself.
        let (dist, index) = B::nearest_code(Self::inner(x), Self::inner(codebook));
        (Self::from_inner(dist), Self::int_from_inner(index))
    }
}

/// Whether `device` runs on the wgpu runtime (with or without autodiff), where the kernel exists.
///
/// The kernel is WGSL text: this crate enables burn's plain `wgpu` feature, whose devices compile
/// WGSL. Enabling burn's `vulkan` or `metal` features (SPIR-V or MSL compilers) would need a
/// check of the device's compiler here too.
pub fn kernel_available(device: &Device) -> bool {
    super::Capabilities::of(device).wgsl_kernels
}

/// The nearest code of every row.
#[derive(Debug, Clone)]
pub struct NearestCode {
    /// `[n]` index of the nearest codebook row.
    pub index: Tensor<1, Int>,
    /// `[n]` squared L2 distance to it.
    pub dist: Tensor<1>,
}

/// Nearest codebook entry of every row of `x`. No gradient flows through it: the result is a
/// discrete choice (the straight-through estimator is applied by the caller). Autodiff inputs
/// are fine; the outputs keep their autodiff association but are constants.
///
/// On a wgpu device with `f32` inputs and `d <= 4096` this runs the custom kernel (exact
/// `sum (x - c)^2`); anywhere else it falls back to [`nearest_code_reference`]. Both return the
/// smallest index among equal distances, and the index in the device's integer type.
///
/// # Shapes
/// - x: `[n, d]`
/// - codebook: `[codebook_size, d]`
/// - output: `[n]` indices and distances
pub fn nearest_code(x: Tensor<2>, codebook: Tensor<2>) -> NearestCode {
    let [n, d] = x.dims();
    let [k, dc] = codebook.dims();
    assert_eq!(d, dc, "x has {d} columns, the codebook {dc}");
    assert!(k > 0, "empty codebook");
    let device = x.device();
    let f32_inputs = x.dtype() == DType::F32 && codebook.dtype() == DType::F32;
    if !(kernel_available(&device) && f32_inputs && launch::kernel_supports(d)) {
        return nearest_code_reference(x, codebook);
    }
    let (dist, index) = Dispatch::nearest_code(x.detach().into_dispatch(), codebook.detach().into_dispatch());
    let dist = Tensor::<1>::from_dispatch(dist);
    let index = Tensor::<1, Int>::from_dispatch(index);
    // The kernel writes i32; follow the device's integer type like Burn's own argmin does.
    let int_dtype = device.settings().int_dtype;
    let index = if index.dtype() == DType::from(int_dtype) { index } else { index.cast(int_dtype) };
    debug_assert_eq!(dist.dims(), [n]);
    NearestCode { index, dist }
}

/// Pure-Burn reference of [`nearest_code`]: `|x|^2 - 2 x c^T + |c|^2`, then argmin per row.
///
/// # Shapes
/// - x: `[n, d]`
/// - codebook: `[codebook_size, d]`
/// - output: `[n]` indices and distances
pub fn nearest_code_reference(x: Tensor<2>, codebook: Tensor<2>) -> NearestCode {
    let [n, _] = x.dims();
    let (dist, index) = distance_matrix(x, codebook).min_dim_with_indices(1); // [n, 1] each
    NearestCode { index: index.reshape([n]), dist: dist.clamp_min(0.0).reshape([n]) }
}

/// Squared L2 distance between every row of `x` and every codebook row as
/// `|x|^2 - 2 x c^T + |c|^2`, without gradient. Rounding can leave entries slightly below 0;
/// callers clamp where it matters (after the argmin in [`nearest_code_reference`]).
///
/// # Shapes
/// - x: `[n, d]`
/// - codebook: `[codebook_size, d]`
/// - output: `[n, codebook_size]`
pub fn distance_matrix(x: Tensor<2>, codebook: Tensor<2>) -> Tensor<2> {
    let [n, d] = x.dims();
    let [k, dc] = codebook.dims();
    assert_eq!(d, dc, "x has {d} columns, the codebook {dc}");
    let (x, codebook) = (x.detach(), codebook.detach());
    let x2 = x.clone().powi_scalar(2).sum_dim(1); // [n, 1]
    let c2 = codebook.clone().powi_scalar(2).sum_dim(1).reshape([1, k]); // [1, k]
    x2.expand([n, k]) - x.matmul(codebook.transpose()).mul_scalar(2.0) + c2.expand([n, k])
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

    #[test]
    fn the_cpu_backend_falls_back_to_the_reference() {
        for device in [Device::flex(), Device::flex().autodiff()] {
            assert!(!kernel_available(&device));
            let x = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 0.0, 2.0, 2.0, 5.0, 0.0], [3, 2]), &device);
            let c = Tensor::<2>::from_data(TensorData::new(vec![3.0f32, 3.0, 0.0, 1.0, 0.0, 1.0, 4.0, 0.0], [4, 2]), &device);
            let x = if device.is_autodiff() { x.require_grad() } else { x };
            let out = nearest_code(x, c);
            let idx: Vec<i64> = out.index.into_data().try_into_vec_as().unwrap();
            assert_eq!(idx, vec![1, 0, 3]);
        }
    }
}
