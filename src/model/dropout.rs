//! Dropout with a fast mask on the CPU backend.
//!
//! `burn::nn::Dropout` draws its Bernoulli mask with `Tensor::random_like`, which on Burn's CPU
//! backend (flex) builds a sampler and draws one element at a time: perf put 17-21% of a `cpu`
//! training step at SPEC's sizes in that loop (`benches/RESULTS.md`). [`dropout`] takes one
//! 64-bit seed from the device's own generator (so `Device::seed` still makes runs
//! reproducible), fills 32 random bits per element with ChaCha12 (`rand::rngs::StdRng`) in
//! blocks, and multiplies by the ready-scaled mask (`0` or `1 / (1 - p)`): one tensor operation
//! instead of two. Every other device (wgpu draws its masks in a kernel) runs Burn's
//! `Dropout::forward`. Both keep an element with probability `1 - p` and scale it by
//! `1 / (1 - p)`, and do nothing outside training (no autodiff) or with `p = 0`.

use burn::backend::DispatchDevice;
use burn::nn::Dropout;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Whether `device` is Burn's CPU backend (with or without autodiff).
fn is_flex(device: &Device) -> bool {
    matches!(device.clone().inner().as_dispatch(), DispatchDevice::Flex(_))
}

/// `d.forward(x)`, with the mask drawn on the host on the CPU backend (see the module docs).
pub fn dropout<const D: usize>(d: &Dropout, x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    if !is_flex(&device) || !device.is_autodiff() || !d.training.is_enabled() || d.prob == 0.0 {
        return d.forward(x);
    }
    let shape = x.shape();
    let mask = keep_mask(shape.num_elements(), d.prob, draw_seed(&device));
    x * Tensor::from_data(TensorData::new(mask, shape), &device)
}

/// A 60-bit seed from the device's generator (two 30-bit draws, in range for `i32` ints).
pub(crate) fn draw_seed(device: &Device) -> u64 {
    let t = Tensor::<1, Int>::random([2], Distribution::Uniform(0.0, (1u64 << 30) as f64), device);
    let v: Vec<i64> = t.into_data().convert::<i64>().try_to_vec::<i64>().expect("two integers");
    ((v[0] as u64) << 30) | (v[1] as u64 & ((1 << 30) - 1))
}

/// `n` mask values: `1 / (1 - p)` with probability `1 - p`, else 0.
fn keep_mask(n: usize, p: f64, seed: u64) -> Vec<f32> {
    let keep = 1.0 - p;
    // Keep when a uniform 32-bit draw is below keep * 2^32.
    let threshold = (keep * 4_294_967_296.0).round() as u64;
    let scale = (1.0 / keep) as f32;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut mask = Vec::with_capacity(n);
    let mut bits = [0u32; 4096];
    while mask.len() < n {
        let len = (n - mask.len()).min(bits.len());
        rng.fill(&mut bits[..len]);
        mask.extend(bits[..len].iter().map(|&b| if (b as u64) < threshold { scale } else { 0.0 }));
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::DropoutConfig;

    #[test]
    fn the_mask_keeps_one_minus_p_and_scales() {
        let m = keep_mask(200_000, 0.1, 7);
        let kept = m.iter().filter(|&&v| v != 0.0).count() as f64 / m.len() as f64;
        assert!((kept - 0.9).abs() < 0.005, "kept {kept}");
        assert!(m.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.9).abs() < 1e-6));
        // Seeds give different masks; the same seed the same one.
        assert_ne!(keep_mask(64, 0.5, 1), keep_mask(64, 0.5, 2));
        assert_eq!(keep_mask(5000, 0.5, 3), keep_mask(5000, 0.5, 3));
    }

    #[test]
    fn cpu_training_drops_with_gradients_through_the_mask_and_eval_passes_through() {
        let device = Device::flex().autodiff();
        let d = DropoutConfig::new(0.25).init();
        let x = Tensor::<2>::ones([64, 128], &device).require_grad();
        let y = dropout(&d, x.clone());
        let v: Vec<f32> = y.clone().into_data().try_to_vec::<f32>().unwrap();
        let dropped = v.iter().filter(|&&a| a == 0.0).count() as f64 / v.len() as f64;
        assert!((dropped - 0.25).abs() < 0.03, "dropped {dropped}");
        let g: Vec<f32> = x.grad(&y.clone().sum().backward()).unwrap().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(g, v, "d(sum(x * mask))/dx is the mask, and x is ones");
        // The device seed makes it reproducible.
        device.seed(11);
        let a: Vec<f32> = dropout(&d, x.clone()).into_data().try_to_vec::<f32>().unwrap();
        device.seed(11);
        let b: Vec<f32> = dropout(&d, x.clone()).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(a, b);
        // No autodiff: identity.
        let plain = Tensor::<2>::ones([4, 4], &Device::flex());
        assert_eq!(dropout(&d, plain.clone()).into_data(), plain.into_data());
    }
}
