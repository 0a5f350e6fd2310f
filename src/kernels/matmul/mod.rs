//! Matrix products for software adapters: a register-tiled batched matmul in WGSL
//! (`shaders/matmul.wgsl`) that the model's attention and linear layers use where Burn's own
//! matmul kernels are slow.
//!
//! Burn's wgpu matmuls tile through workgroup memory with barriers. On a GPU that is the right
//! design; on lavapipe, the software Vulkan adapter CI and GPU-less machines run, every barrier
//! is a coroutine switch, and the small batched products of attention (`[batch x heads, seq,
//! d_kv]`) ran at under 1 GFLOP/s. The kernel here keeps a small output tile per invocation in
//! registers and no workgroup memory (`benches/RESULTS.md` has the measurements).
//!
//! [`matmul`] is what the model calls. [`MatmulPolicy::Auto`] (the default) runs the kernel on
//! wgpu software adapters only (the device has no physical card) and Burn's `Tensor::matmul`
//! everywhere else, which is also the reference the tests compare the kernel with.
//! Gradients: `dlhs = dout @ rhs^T` and `drhs = lhs^T @ dout` with the same kernel, the
//! transposes being stride views (`backward.rs`).

mod backward;
mod launch;

use std::sync::atomic::{AtomicU8, Ordering};

use burn::backend::fusion::custom::TensorSpec;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Dispatch};
use burn::nn::Linear;
use burn::tensor::{DType, Device, Shape, Tensor};

/// Backends with the tiled matmul kernel: the cubecl backend (wgpu runtime), fused or not, and
/// autodiff over them (`backward.rs`).
#[backend_extension(Cube, Fusion, Autodiff)]
pub trait MatmulBackend: burn::backend::Backend {
    /// `lhs @ rhs` over two batch axes, read through strides (so transposed and expanded
    /// views need no copy). The batch axes are equal ([`matmul`] expands them).
    ///
    /// # Shapes
    /// - lhs: `[b1, b2, m, k]`, `k > 0`
    /// - rhs: `[b1, b2, k, n]`
    /// - output: `[b1, b2, m, n]`, contiguous
    #[fusion(meta = matmul_meta)]
    fn tiled_matmul(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// Output metadata for the lazy (fused) path.
fn matmul_meta(lhs: &TensorSpec, rhs: &TensorSpec) -> TensorSpec {
    let (l, r) = (&lhs.shape, &rhs.shape);
    TensorSpec::new(Shape::new([l[0].max(r[0]), l[1].max(r[1]), l[2], r[3]]), DType::F32)
}

/// Which matmul [`matmul`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatmulPolicy {
    /// The tiled kernel on wgpu software adapters, Burn's matmul elsewhere.
    Auto = 0,
    /// Always Burn's `Tensor::matmul`.
    Burn = 1,
    /// The tiled kernel on every wgpu device (Burn's matmul on the others).
    Tiled = 2,
}

static POLICY: AtomicU8 = AtomicU8::new(MatmulPolicy::Auto as u8);

/// Sets the policy for the whole process (benchmarks compare the two paths with it). Tests,
/// which run side by side in one process, pass a policy to [`matmul_using`] instead.
pub fn set_policy(policy: MatmulPolicy) {
    POLICY.store(policy as u8, Ordering::Relaxed);
}

/// The current policy.
pub fn policy() -> MatmulPolicy {
    match POLICY.load(Ordering::Relaxed) {
        1 => MatmulPolicy::Burn,
        2 => MatmulPolicy::Tiled,
        _ => MatmulPolicy::Auto,
    }
}

/// Whether [`matmul`] runs the kernel on `device` under the current policy.
pub fn uses_kernel(device: &Device) -> bool {
    uses_kernel_under(policy(), device)
}

/// Whether [`matmul_using`] runs the kernel on `device` under `policy`.
pub fn uses_kernel_under(policy: MatmulPolicy, device: &Device) -> bool {
    let caps = super::Capabilities::of(device);
    match policy {
        MatmulPolicy::Burn => false,
        MatmulPolicy::Tiled => caps.wgsl_kernels,
        MatmulPolicy::Auto => caps.tiled_matmul,
    }
}

/// `a @ b` over the last two axes, batch axes broadcast as in `Tensor::matmul`.
/// Differentiable. Runs the tiled kernel where [`uses_kernel`] says so (and the inputs are
/// `f32`), else `Tensor::matmul`.
///
/// # Shapes
/// - a: `[..., m, k]`
/// - b: `[..., k, n]`
/// - output: `[..., m, n]`
pub fn matmul<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    matmul_using(policy(), a, b)
}

/// [`matmul`] under `policy` instead of the process's.
pub fn matmul_using<const D: usize>(policy: MatmulPolicy, a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    let f32_inputs = a.dtype() == DType::F32 && b.dtype() == DType::F32;
    let (da, db) = (a.dims(), b.dims());
    if !(2..=4).contains(&D) || !f32_inputs || da[D - 1] == 0 || !uses_kernel_under(policy, &a.device()) {
        return a.matmul(b);
    }
    let mut out_dims = [0; D];
    for axis in 0..D - 2 {
        let (x, y) = (da[axis], db[axis]);
        assert!(x == y || x == 1 || y == 1, "matmul: batch axes of {da:?} and {db:?} do not broadcast");
        out_dims[axis] = x.max(y);
    }
    out_dims[D - 2] = da[D - 2];
    out_dims[D - 1] = db[D - 1];
    let (a, b) = (rank4(a), rank4(b));
    let (a4, b4) = (a.dims(), b.dims());
    let batch = [a4[0].max(b4[0]), a4[1].max(b4[1])];
    // Broadcast batch axes are expanded here, not in the kernel, so that the kernel's
    // gradients have its inputs' shapes; Burn's autodiff sums them back over the expansion.
    let a = if a4[..2] == batch { a } else { a.expand([batch[0], batch[1], a4[2], a4[3]]) };
    let b = if b4[..2] == batch { b } else { b.expand([batch[0], batch[1], b4[2], b4[3]]) };
    let out = Dispatch::tiled_matmul(a.into_dispatch(), b.into_dispatch());
    Tensor::<4>::from_dispatch(out).reshape(out_dims)
}

/// A rank-2..4 tensor as rank 4, with leading size-1 axes (a free reshape for contiguous
/// tensors).
fn rank4<const D: usize>(t: Tensor<D>) -> Tensor<4> {
    let d = t.dims();
    match D {
        2 => t.reshape([1, 1, d[0], d[1]]),
        3 => t.reshape([1, d[0], d[1], d[2]]),
        _ => t.reshape([d[0], d[1], d[2], d[3]]),
    }
}

/// A [`Linear`] layer (with or without bias) through [`matmul`]: the rows of all leading axes
/// form one `[rows, d_in] @ [d_in, d_out]` product.
///
/// # Shapes
/// - x: `[..., d_in]`
/// - output: `[..., d_out]`
pub fn linear<const D: usize>(layer: &Linear, x: Tensor<D>) -> Tensor<D> {
    if !uses_kernel(&x.device()) {
        return layer.forward(x);
    }
    let mut dims = x.dims();
    let d_in = dims[D - 1];
    let w = layer.weight.val(); // [d_in, d_out]
    let d_out = w.dims()[1];
    let rows = dims[..D - 1].iter().product();
    dims[D - 1] = d_out;
    let y = matmul(x.reshape([rows, d_in]), w);
    let y = match &layer.bias {
        Some(bias) => y + bias.val().unsqueeze::<2>(),
        None => y,
    };
    y.reshape(dims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{TensorData, Tolerance};

    /// `[batch, m, k] @ [batch or 1, k, n]` on the host, by the definition.
    fn host_matmul(a: &[f32], b: &[f32], [batch, m, k]: [usize; 3], b_batch: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0f32; batch * m * n];
        for z in 0..batch {
            let zb = if b_batch == 1 { 0 } else { z };
            for i in 0..m {
                for j in 0..n {
                    out[(z * m + i) * n + j] = (0..k).map(|l| a[(z * m + i) * k + l] * b[(zb * k + l) * n + j]).sum();
                }
            }
        }
        out
    }

    #[test]
    fn the_cpu_backend_runs_burns_matmul_and_it_matches_the_definition() {
        let device = Device::flex();
        for policy in [MatmulPolicy::Auto, MatmulPolicy::Burn, MatmulPolicy::Tiled] {
            assert!(!uses_kernel_under(policy, &device), "no kernel off wgpu ({policy:?})");
        }
        let values = |n: usize, seed: usize| -> Vec<f32> { (0..n).map(|i| ((i * 7919 + seed) % 13) as f32 / 6.0 - 1.0).collect() };
        let tol = Tolerance::absolute(1e-5);
        // A batch of 2 against a broadcast batch of 1, and against a full batch.
        for b_batch in [1, 2] {
            let (a, b) = (values(24, 1), values(b_batch * 20, 2));
            let got = matmul(
                Tensor::<3>::from_data(TensorData::new(a.clone(), [2, 3, 4]), &device),
                Tensor::<3>::from_data(TensorData::new(b.clone(), [b_batch, 4, 5]), &device),
            );
            assert_eq!(got.dims(), [2, 3, 5]);
            got.into_data().assert_approx_eq::<f32>(&TensorData::new(host_matmul(&a, &b, [2, 3, 4], b_batch, 5), [2, 3, 5]), tol);
        }
        // The linear layer: x @ w + bias over every leading axis.
        let layer = crate::seed::init_seeded(47, |host| burn::nn::LinearConfig::new(4, 3).init(host));
        let w: Vec<f32> = layer.weight.val().into_data().try_to_vec().unwrap();
        let bias: Vec<f32> = layer.bias.as_ref().unwrap().val().into_data().try_to_vec().unwrap();
        let x = values(40, 3);
        let mut want = host_matmul(&x, &w, [1, 10, 4], 1, 3);
        want.iter_mut().enumerate().for_each(|(i, v)| *v += bias[i % 3]);
        let got = linear(&layer, Tensor::<3>::from_data(TensorData::new(x, [2, 5, 4]), &device));
        got.into_data().assert_approx_eq::<f32>(&TensorData::new(want, [2, 5, 3]), tol);
    }
}
