//! The tiled matmul under autodiff: `out = lhs @ rhs` is a tracked node whose backward runs the
//! same kernel twice, `dlhs = dout @ rhs^T` and `drhs = lhs^T @ dout`. The transposes are
//! `swap_dims` views, which the kernel reads through their strides.
//!
//! Layout after Burn's `examples/custom-wgpu-kernel` (`backward.rs`).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::tensor::FloatTensor;

use super::MatmulBackend;

/// The backward step of one matmul.
#[derive(Debug)]
struct MatmulBackward;

impl<B: MatmulBackend> Backward<B, 2> for MatmulBackward {
    /// lhs and rhs.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_lhs, node_rhs] = ops.parents;
        let dout = grads.consume::<B>(&ops.node);
        let (lhs, rhs) = ops.state;
        if let Some(node) = node_lhs {
            grads.register::<B>(node.id, B::tiled_matmul(dout.clone(), B::float_swap_dims(rhs, 2, 3)));
        }
        if let Some(node) = node_rhs {
            grads.register::<B>(node.id, B::tiled_matmul(B::float_swap_dims(lhs, 2, 3), dout));
        }
    }
}

impl<B: MatmulBackend, C: CheckpointStrategy> MatmulBackend for Autodiff<B, C> {
    fn tiled_matmul(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
        match MatmulBackward.prepare::<C>([lhs.node(), rhs.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (lhs, rhs) = (lhs.into_primitive(), rhs.into_primitive());
                let out = B::tiled_matmul(lhs.clone(), rhs.clone());
                prep.finish((lhs, rhs), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::tiled_matmul(lhs.into_primitive(), rhs.into_primitive())),
        }
    }
}
