//! Clipping of the gradient's global L2 norm, as PyTorch's `clip_grad_norm_` (and so the
//! Hugging Face Trainer behind TIGER's and DiscRec's official code) does it: one norm over all
//! parameters, every gradient scaled by `min(1, max_norm / (norm + 1e-6))`.
//!
//! Burn's own `GradientClippingConfig::Norm` clips each parameter's gradient by its own norm,
//! which is a different method; this one stays on the device (no read-back).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

/// Sums the squared gradients of every float parameter.
struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    sum: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let s = g.square().sum();
            self.sum = Some(match self.sum.take() {
                Some(acc) => acc + s,
                None => s,
            });
        }
    }
}

/// Multiplies every float parameter's gradient by a scalar tensor.
struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: Tensor<1>,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            let factor = self.factor.clone().reshape([1; D]);
            self.grads.register::<D>(param.id, g * factor);
        }
    }
}

/// The global L2 norm of `grads` over the parameters of `module`, on the device.
///
/// # Shapes
/// - output: `[1]`
pub fn global_norm<M: Module>(module: &M, grads: &GradientsParams) -> Option<Tensor<1>> {
    let mut v = SquaredNorm { grads, sum: None };
    module.visit(&mut v);
    v.sum.map(|s| s.sqrt())
}

/// Scales `grads` so that their global norm is at most `max_norm`; returns the norm before
/// clipping (a device tensor, read it only when needed).
pub fn clip_global_norm<M: Module>(module: &M, grads: &mut GradientsParams, max_norm: f64) -> Option<Tensor<1>> {
    let norm = global_norm(module, grads)?;
    let factor = norm.clone().add_scalar(1e-6).recip().mul_scalar(max_norm).clamp_max(1.0);
    module.visit(&mut Scale { grads, factor });
    Some(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::{Device, TensorData};

    #[test]
    fn scales_to_the_global_norm_only_when_above() {
        let device = Device::flex().autodiff();
        let lin: Linear = crate::seed::init_seeded(41, |host| LinearConfig::new(3, 2).init(host)).to_device(&device).train();
        let x = Tensor::<2>::from_data(TensorData::new(vec![1f32, 2., 3., -1., 0., 4.], [2, 3]), &device);
        let loss = lin.forward(x).sum().mul_scalar(10.0);
        let mut grads = GradientsParams::from_grads(loss.backward(), &lin);
        let before = global_norm(&lin, &grads).unwrap().into_scalar::<f32>();
        // By hand: dL/dW[i][j] = 10 * (column sum i of x) = [0, 20, 70] for both outputs j; dL/db = 10 * 2 rows.
        let expect = (2.0f32 * 100.0 * (0.0 + 4.0 + 49.0) + 2.0 * 400.0).sqrt();
        assert!((before - expect).abs() < 1e-3, "{before} vs {expect}");
        let norm = clip_global_norm(&lin, &mut grads, 1.0).unwrap().into_scalar::<f32>();
        assert!((norm - expect).abs() < 1e-3);
        let after = global_norm(&lin, &grads).unwrap().into_scalar::<f32>();
        assert!((after - 1.0).abs() < 1e-4, "{after}");
        // Below the threshold nothing changes.
        clip_global_norm(&lin, &mut grads, 5.0);
        let same = global_norm(&lin, &grads).unwrap().into_scalar::<f32>();
        assert!((same - 1.0).abs() < 1e-4, "{same}");
    }
}
