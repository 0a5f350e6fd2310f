//! Item-local attention under autodiff: the forward kernel's output is a tracked node whose
//! backward runs the backward kernel (`shaders/item_attention_backward.wgsl`).
//!
//! Layout after Burn's `examples/custom-wgpu-kernel` (`backward.rs`). With `P = softmax(S)`,
//! `S = Q K^T / sqrt(d_kv)` restricted to the item-local mask and `O = P V`:
//! `dV = P^T dO`, `dS = P * (dO V^T - delta)` with `delta_i = dO_i . O_i`,
//! `dQ = dS K / sqrt(d_kv)`, `dK = dS^T Q / sqrt(d_kv)`. `P` is recomputed from the saved
//! log-sum-exp; `delta` is computed here with plain backend ops.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{AutodiffBackend, TensorMetadata};
use burn::tensor::{Shape, Slice};

use super::ItemAttentionBackend;

/// The backward step of one item-local attention call.
#[derive(Debug)]
struct ItemAttentionBackward;

/// What the backward needs: q, k, v, slot, the output, the log-sum-exp and the window.
type State<B> = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, IntTensor<B>, FloatTensor<B>, FloatTensor<B>, usize);

impl<B: ItemAttentionBackend> Backward<B, 3> for ItemAttentionBackward {
    type State = State<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_q, node_k, node_v] = ops.parents;
        let dout = grads.consume::<B>(&ops.node);
        let (q, k, v, slot, out, lse, window) = ops.state;
        let shape = q.shape();
        let [batch, seq, n_heads] = [shape[0], shape[1], shape[2]];
        let delta = B::float_sum_dim(B::float_mul(dout.clone(), out), 3); // [batch, seq, n_heads, 1]
        let lse = B::float_reshape(lse, Shape::new([batch, seq, n_heads, 1]));
        let stats = B::float_cat(vec![lse, delta], 3); // [batch, seq, n_heads, 2]
        let packed = B::item_attention_backward(q, k, v, slot, stats, dout, window); // [3, batch, seq, n_heads, d_kv]
        let part = |i: usize| {
            let all = Slice::from(0..shape[3]);
            let slices = [Slice::from(i..i + 1), Slice::from(0..batch), Slice::from(0..seq), Slice::from(0..n_heads), all];
            B::float_reshape(B::float_slice(packed.clone(), &slices), shape.clone())
        };
        for (i, node) in [node_q, node_k, node_v].into_iter().enumerate() {
            if let Some(node) = node {
                grads.register::<B>(node.id, part(i));
            }
        }
    }
}

impl<B: ItemAttentionBackend, C: CheckpointStrategy> ItemAttentionBackend for Autodiff<B, C> {
    fn item_attention_forward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        slot: IntTensor<Self>,
        window: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        match ItemAttentionBackward.prepare::<C>([q.node(), k.node(), v.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (q, k, v) = (q.into_primitive(), k.into_primitive(), v.into_primitive());
                let (out, lse) = B::item_attention_forward(q.clone(), k.clone(), v.clone(), slot.clone(), window);
                let state = (q, k, v, slot, out.clone(), lse.clone(), window);
                (prep.finish(state, out), Self::from_inner(lse))
            }
            OpsKind::UnTracked(prep) => {
                let (out, lse) = B::item_attention_forward(q.into_primitive(), k.into_primitive(), v.into_primitive(), slot, window);
                (prep.finish(out), Self::from_inner(lse))
            }
        }
    }

    fn item_attention_backward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        slot: IntTensor<Self>,
        stats: FloatTensor<Self>,
        dout: FloatTensor<Self>,
        window: usize,
    ) -> FloatTensor<Self> {
        // Not differentiable itself (no second-order gradients).
        let inner = B::item_attention_backward(
            Self::inner(q),
            Self::inner(k),
            Self::inner(v),
            slot,
            Self::inner(stats),
            Self::inner(dout),
            window,
        );
        Self::from_inner(inner)
    }
}
