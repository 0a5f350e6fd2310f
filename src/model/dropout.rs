//! Dropout with a fast mask on the CPU backend.
//!
//! `burn::nn::Dropout` draws its Bernoulli mask with `Tensor::random_like`, which on Burn's CPU
//! backend (flex) builds a sampler and draws one element at a time: perf put 17-21% of a `cpu`
//! training step at SPEC's sizes in that loop (`benches/RESULTS.md`). [`dropout`] takes one
//! 64-bit seed from this thread's mask generator (seeded by the trainer with [`reseed`], so runs
//! are reproducible, and never shared with another thread, so tests or trainings running side
//! by side do not change each other's masks), fills 32 random bits per element with ChaCha12
//! (`rand::rngs::StdRng`) in blocks, and multiplies by the ready-scaled mask (`0` or `1 / (1 - p)`): one tensor operation
//! instead of two. Every other device (wgpu draws its masks in a kernel) runs Burn's
//! `Dropout::forward`. Both keep an element with probability `1 - p` and scale it by
//! `1 / (1 - p)`, and do nothing outside training (no autodiff) or with `p = 0`.

use std::cell::RefCell;

use burn::nn::Dropout;
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

thread_local! {
    /// This thread's generator of mask seeds (seed 0 until [`reseed`]).
    static MASK_SEEDS: RefCell<StdRng> = RefCell::new(StdRng::seed_from_u64(0));
}

/// Restarts this thread's mask generator from `seed`: the masks [`dropout`] draws on the CPU
/// backend from then on depend on `seed` alone.
pub fn reseed(seed: u64) {
    MASK_SEEDS.with(|r| *r.borrow_mut() = StdRng::seed_from_u64(seed));
}

/// Whether `device` is Burn's CPU backend (with or without autodiff).
fn is_flex(device: &Device) -> bool {
    crate::kernels::Capabilities::of(device).class == crate::kernels::DeviceClass::Cpu
}

/// `d.forward(x)`, with the mask drawn on the host on the CPU backend (see the module docs).
pub fn dropout<const D: usize>(d: &Dropout, x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    if !is_flex(&device) || !device.is_autodiff() || !d.training.is_enabled() || d.prob == 0.0 {
        return d.forward(x);
    }
    let shape = x.shape();
    let mask = keep_mask(shape.num_elements(), d.prob, draw_seed());
    x * Tensor::from_data(TensorData::new(mask, shape), &device)
}

/// A 64-bit seed from this thread's mask generator (see [`reseed`]): for other per-step draws
/// that must follow the run's seed, such as SASRec's sampled negatives.
pub fn draw_seed() -> u64 {
    MASK_SEEDS.with(|r| r.borrow_mut().random::<u64>())
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
        // The thread's seed makes it reproducible, and another thread's draws do not disturb it.
        let masks = |seed| {
            reseed(seed);
            [0; 3].map(|_| dropout(&d, x.clone()).into_data().try_to_vec::<f32>().unwrap())
        };
        let a = masks(11);
        let other = std::thread::spawn(move || {
            reseed(11);
            let x = Tensor::<2>::ones([64, 128], &Device::flex().autodiff());
            (0..100).for_each(|_| drop(dropout(&DropoutConfig::new(0.25).init(), x.clone())));
        });
        let b = masks(11);
        other.join().unwrap();
        assert_eq!(a, b);
        assert_ne!(a[0], a[1], "each call draws a new mask");
        assert_ne!(masks(12)[0], a[0]);
        // No autodiff: identity.
        let plain = Tensor::<2>::ones([4, 4], &Device::flex());
        assert_eq!(dropout(&d, plain.clone()).into_data(), plain.into_data());
    }
}
