//! Item-local attention, DiscRec's collaborative-branch attention (arXiv 2506.15576, SPEC
//! section 4): `softmax(Q K^T / sqrt(d_kv) + M) V` per head, where `M` lets a token attend only
//! to the tokens of its own item, plus the link between EOS and the last history item.
//!
//! Which item a token belongs to comes from `slot` (`EncoderBatch::item_slot`): 0 = padding,
//! 1 = EOS, 2 = the last history item, 3 = the one before, ... A query with slot `a` sees a key
//! with slot `b` when `a != 0` and (`a == b` or `{a, b} == {1, 2}`); padding queries see nothing
//! and output zeros. The mask is symmetric.
//!
//! [`item_local_attention`] is what the model calls: on a wgpu device with `d_kv % 4 == 0` it runs
//! the custom kernels `shaders/item_attention.wgsl` (forward) and
//! `shaders/item_attention_backward.wgsl` (dq, dk, dv, wired into Burn's autodiff in
//! `backward.rs`): every query scans only the `2 * window + 1` keys around itself, so the cost is
//! `O(seq x window)` and no `[seq, seq]` score or mask matrix exists in device memory. Anywhere
//! else it runs [`item_local_attention_reference`], dense scores plus an additive mask.
//!
//! The window is sound because encoder rows are built by `ItemTokens::encoder_input`: every
//! item's tokens are contiguous, at most `window` (the longest ID) of them, and EOS directly
//! follows the last item. Inputs that break this (a slot spread further than `window`) give
//! different results on the two paths.

mod backward;
mod launch;

use burn::backend::fusion::custom::TensorSpec;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{backend_extension, Dispatch};
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, DType, Int, IntDType, Shape, Tensor};

pub use super::quantize::kernel_available;

/// Backends with the item-local attention kernels: the cubecl backend (wgpu runtime), fused or
/// not, and autodiff over them (`backward.rs`).
#[backend_extension(Cube, Fusion, Autodiff)]
pub trait ItemAttentionBackend: burn::backend::Backend {
    /// The attention output and the log-sum-exp of every query's scores (0 for queries that
    /// see no key). `slot` is `i32`.
    ///
    /// # Shapes
    /// - q, k, v: `[batch, seq, n_heads, d_kv]`
    /// - slot: `[batch, seq]`
    /// - output: `([batch, seq, n_heads, d_kv], [batch, seq, n_heads])`
    #[fusion(meta = forward_meta)]
    fn item_attention_forward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        slot: IntTensor<Self>,
        window: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// The gradients `dq`, `dk`, `dv` stacked in one tensor. `stats[.., 0]` is the forward's
    /// log-sum-exp, `stats[.., 1]` is `sum(dout * out)` over `d_kv`.
    ///
    /// # Shapes
    /// - q, k, v, dout: `[batch, seq, n_heads, d_kv]`
    /// - slot: `[batch, seq]`
    /// - stats: `[batch, seq, n_heads, 2]`
    /// - output: `[3, batch, seq, n_heads, d_kv]`
    #[fusion(meta = backward_meta)]
    fn item_attention_backward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        slot: IntTensor<Self>,
        stats: FloatTensor<Self>,
        dout: FloatTensor<Self>,
        window: usize,
    ) -> FloatTensor<Self>;
}

/// Output metadata of the forward for the lazy (fused) path.
fn forward_meta(q: &TensorSpec, _k: &TensorSpec, _v: &TensorSpec, _slot: &TensorSpec, _window: &usize) -> (TensorSpec, TensorSpec) {
    let s = &q.shape;
    (TensorSpec::new(q.shape.clone(), DType::F32), TensorSpec::new(Shape::new([s[0], s[1], s[2]]), DType::F32))
}

/// Output metadata of the backward for the lazy (fused) path.
fn backward_meta(
    q: &TensorSpec,
    _k: &TensorSpec,
    _v: &TensorSpec,
    _slot: &TensorSpec,
    _stats: &TensorSpec,
    _dout: &TensorSpec,
    _window: &usize,
) -> TensorSpec {
    let s = &q.shape;
    TensorSpec::new(Shape::new([3, s[0], s[1], s[2], s[3]]), DType::F32)
}

fn check_shapes(q: &Tensor<4>, k: &Tensor<4>, v: &Tensor<4>, slot: &Tensor<2, Int>) {
    let dims = q.dims();
    assert_eq!(k.dims(), dims, "k has shape {:?}, q {dims:?}", k.dims());
    assert_eq!(v.dims(), dims, "v has shape {:?}, q {dims:?}", v.dims());
    assert_eq!(slot.dims(), [dims[0], dims[1]], "slot has shape {:?}, q {dims:?}", slot.dims());
}

/// Item-local attention (see the module docs), differentiable in `q`, `k` and `v`. Runs the
/// kernel where available (wgpu, `f32`, `d_kv % 4 == 0`), else
/// [`item_local_attention_reference`]. `window` is the longest item ID in tokens.
///
/// # Shapes
/// - q, k, v: `[batch, seq_src, n_heads, d_kv]`
/// - slot: `[batch, seq_src]`
/// - output: `[batch, seq_src, n_heads, d_kv]` (zeros at padding queries)
pub fn item_local_attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, slot: Tensor<2, Int>, window: usize) -> Tensor<4> {
    check_shapes(&q, &k, &v, &slot);
    let f32_inputs = [&q, &k, &v].iter().all(|t| t.dtype() == DType::F32);
    let [_, _, _, d_kv] = q.dims();
    if !(kernel_available(&q.device()) && f32_inputs && launch::kernel_supports(d_kv)) {
        return item_local_attention_reference(q, k, v, slot, window);
    }
    let slot = slot.cast(IntDType::I32);
    let (out, _lse) = Dispatch::item_attention_forward(
        q.into_dispatch(),
        k.into_dispatch(),
        v.into_dispatch(),
        slot.into_dispatch(),
        window,
    );
    Tensor::from_dispatch(out)
}

/// The `[batch, seq, seq]` mask of which key each query may see (see the module docs).
pub fn item_local_mask(slot: Tensor<2, Int>) -> Tensor<3, Bool> {
    let [batch, seq] = slot.dims();
    let a = slot.clone().unsqueeze_dim::<3>(2).expand([batch, seq, seq]); // query slot
    let b = slot.unsqueeze_dim::<3>(1).expand([batch, seq, seq]); // key slot
    let same = a.clone().equal(b.clone());
    let link = (a.clone() + b.clone()).equal_elem(3).bool_and((a.clone() * b).equal_elem(2));
    same.bool_or(link).bool_and(a.not_equal_elem(0))
}

/// Pure-Burn item-local attention: dense `[batch, n_heads, seq, seq]` scores, an additive mask
/// built from `slot`, softmax, and zeros at padding queries. `window` is not used (see the module
/// docs for when the two paths agree).
///
/// # Shapes
/// - q, k, v: `[batch, seq_src, n_heads, d_kv]`
/// - slot: `[batch, seq_src]`
/// - output: `[batch, seq_src, n_heads, d_kv]`
pub fn item_local_attention_reference(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, slot: Tensor<2, Int>, _window: usize) -> Tensor<4> {
    check_shapes(&q, &k, &v, &slot);
    let [batch, seq, n_heads, d_kv] = q.dims();
    let mask = item_local_mask(slot.clone()).unsqueeze_dim::<4>(1).expand([batch, n_heads, seq, seq]);
    let (q, k, v) = (q.swap_dims(1, 2), k.swap_dims(1, 2), v.swap_dims(1, 2)); // [batch, n_heads, seq, d_kv]
    let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((d_kv as f64).sqrt()); // [batch, n_heads, seq, seq]
    // A finite fill: padding rows (nothing allowed) stay finite and are zeroed below.
    let scores = scores.mask_fill(mask.bool_not(), super::MASK_BIAS);
    let out = softmax(scores, 3).matmul(v); // [batch, n_heads, seq, d_kv]
    let real = slot.not_equal_elem(0).float().reshape([batch, 1, seq, 1]);
    (out * real).swap_dims(1, 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::normal;
    use burn::tensor::{Device, TensorData, Tolerance};

    fn slots(rows: &[&[i64]], device: &Device) -> Tensor<2, Int> {
        let seq = rows[0].len();
        let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_ints(TensorData::new(flat, [rows.len(), seq]), device)
    }

    #[test]
    fn the_mask_links_eos_and_the_last_item_only_and_ignores_padding() {
        let device = Device::flex();
        // Left padding, a 2-token item then a 3-token item (variable-length IDs), then EOS.
        let slot = slots(&[&[0, 0, 3, 3, 2, 2, 2, 1]], &device);
        let mask: Vec<bool> = item_local_mask(slot).into_data().try_to_vec().unwrap();
        let allowed = |i: usize, j: usize| mask[i * 8 + j];
        let want = |i: usize, j: usize| match (i, j) {
            (0..=1, _) | (_, 0..=1) => false,
            (2..=3, 2..=3) => true,
            (4..=7, 4..=7) => true,
            _ => false,
        };
        for i in 0..8 {
            for j in 0..8 {
                assert_eq!(allowed(i, j), want(i, j), "query {i}, key {j}");
            }
        }
    }

    #[test]
    fn reference_zeroes_padding_queries_and_keeps_items_apart() {
        let device = Device::flex();
        let slot = slots(&[&[0, 3, 3, 2, 2, 1]], &device);
        let shape = [1, 6, 2, 4];
        let [q, k, v] = [1, 2, 3].map(|seed| normal(shape, seed, &device));
        let out = item_local_attention_reference(q.clone(), k.clone(), v.clone(), slot.clone(), 2);
        let pad = out.clone().slice([0..1, 0..1]).abs().max().into_scalar::<f32>();
        assert_eq!(pad, 0.0);
        // Changing the value of a slot-3 token leaves the EOS/last-item tokens untouched.
        let v2 = v.clone().slice_assign([0..1, 1..2], Tensor::ones([1, 1, 2, 4], &device));
        let out2 = item_local_attention_reference(q.clone(), k.clone(), v2, slot.clone(), 2);
        out.clone().slice([0..1, 3..6]).into_data().assert_eq(&out2.clone().slice([0..1, 3..6]).into_data(), true);
        let moved = (out.slice([0..1, 1..3]) - out2.slice([0..1, 1..3])).abs().max().into_scalar::<f32>();
        assert!(moved > 1e-4);
        // A single-token item attends to itself only: its output is its own value.
        let solo = slots(&[&[0, 0, 4, 3, 2, 1]], &device);
        let out = item_local_attention_reference(q, k, v.clone(), solo, 2);
        out.slice([0..1, 2..4]).into_data().assert_approx_eq::<f32>(&v.slice([0..1, 2..4]).into_data(), Tolerance::absolute(1e-6));
    }

    #[test]
    fn the_cpu_backend_uses_the_reference_with_gradients() {
        let device = Device::flex().autodiff();
        let slot = slots(&[&[0, 3, 3, 2, 2, 1], &[3, 3, 3, 2, 2, 1]], &device);
        let shape = [2, 6, 2, 4];
        let q = normal(shape, 4, &device).require_grad();
        let out = item_local_attention(q.clone(), q.clone(), q.clone(), slot, 3);
        let grads = out.sum().backward();
        let g = q.grad(&grads).expect("q has a gradient");
        let first_pad = g.slice([0..1, 0..1]).abs().max().into_scalar::<f32>();
        assert_eq!(first_pad, 0.0, "padding gets no gradient");
    }
}
