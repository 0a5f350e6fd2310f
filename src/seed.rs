//! Reproducible randomness, whatever thread, order or device the work runs in.
//!
//! Burn keeps one random generator per backend and process (the CPU backend's is a global
//! behind a mutex), shared by every thread: `Module::init`, `Tensor::random` and `Device::seed`
//! all go through it. Two threads that seed and draw at the same time (tests run in parallel,
//! say) interleave their draws, so what either gets depends on the other. sidrec therefore
//! draws from it only through this module:
//! - [`init_seeded`] (and [`try_init_seeded`]): module initialisation on the CPU backend,
//!   right after seeding its generator, under one process-wide lock. Burn's parameters are
//!   lazy (a parameter draws its values the first time it is read), so the module is
//!   materialised (every parameter read once) before the lock is released. A module's initial
//!   weights then depend only on its seed; the caller moves it to its device afterwards.
//! - [`init_unseeded`] (and [`try_init_unseeded`]): initialisation whose values are replaced
//!   at once (loading a checkpoint or pretrained weights), materialised under the same lock,
//!   so that it never draws while another thread initialises from a seed.
//! - [`seed_device`]: seeds a device's generator under the lock (the trainer seeds each epoch,
//!   which fixes Burn's dropout masks on wgpu).
//! - [`normal`] and [`uniform`]: tensors drawn on the host from a seed (ChaCha12,
//!   `rand::rngs::StdRng`), then moved to the device; tests use them for their random inputs.
//!
//! Dropout masks on the CPU backend come from a per-thread generator that the trainer seeds
//! (`crate::model::dropout`), so two trainings in one process do not disturb each other.

use std::sync::{Mutex, MutexGuard};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Held while anything draws from (or seeds) a backend's shared generator.
static GENERATOR: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    // A panic while holding the lock (a failing test) leaves nothing half-done to protect.
    GENERATOR.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads every parameter once, so that lazy parameters draw their values now.
struct Materialise;

impl ModuleVisitor for Materialise {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        drop(param.val());
    }
    fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<D, Int>>) {
        drop(param.val());
    }
    fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<D, Bool>>) {
        drop(param.val());
    }
}

/// `init(&host)` on the CPU backend right after seeding its generator with `seed`, materialised
/// while holding the process-wide lock: the result depends on `seed` alone. Do not call another
/// function of this module inside `init` (the lock is not re-entrant).
pub fn init_seeded<M: Module>(seed: u64, init: impl FnOnce(&Device) -> M) -> M {
    try_init_seeded(seed, |host| Ok::<M, std::convert::Infallible>(init(host))).unwrap_or_else(|e| match e {})
}

/// [`init_seeded`] for an initialisation that can fail.
pub fn try_init_seeded<M: Module, E>(seed: u64, init: impl FnOnce(&Device) -> Result<M, E>) -> Result<M, E> {
    let _held = lock();
    let host = Device::flex();
    host.seed(seed);
    let module = init(&host)?;
    module.visit(&mut Materialise);
    Ok(module)
}

/// `init()`, materialised under the process-wide lock, for initialisations whose random values
/// are replaced at once (a checkpoint or pretrained weights are loaded into them).
pub fn init_unseeded<M: Module>(init: impl FnOnce() -> M) -> M {
    try_init_unseeded(|| Ok::<M, std::convert::Infallible>(init())).unwrap_or_else(|e| match e {})
}

/// [`init_unseeded`] for an initialisation that can fail.
pub fn try_init_unseeded<M: Module, E>(init: impl FnOnce() -> Result<M, E>) -> Result<M, E> {
    let _held = lock();
    let module = init()?;
    module.visit(&mut Materialise);
    Ok(module)
}

/// Seeds `device`'s generator under the process-wide lock.
pub fn seed_device(device: &Device, seed: u64) {
    let _held = lock();
    device.seed(seed);
}

/// A standard normal sample (Box-Muller).
pub fn standard_normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A tensor of standard normal draws from `seed`, made on the host and moved to `device`.
pub fn normal<const D: usize>(shape: [usize; D], seed: u64, device: &Device) -> Tensor<D> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = shape.iter().product::<usize>();
    let v: Vec<f32> = (0..n).map(|_| standard_normal(&mut rng) as f32).collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// A tensor of uniform draws in `[low, high)` from `seed`, made on the host and moved to
/// `device`.
pub fn uniform<const D: usize>(shape: [usize; D], low: f32, high: f32, seed: u64, device: &Device) -> Tensor<D> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = shape.iter().product::<usize>();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(low..high)).collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;

    fn weights(l: &burn::nn::Linear) -> Vec<f32> {
        l.weight.val().into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn seeded_initialisation_depends_on_the_seed_alone_even_with_other_threads_drawing() {
        let reference = weights(&init_seeded(5, |d| LinearConfig::new(32, 32).init(d)));
        // Other threads initialise and seed as fast as they can meanwhile.
        let noise: Vec<_> = (0..2)
            .map(|t| {
                std::thread::spawn(move || {
                    for i in 0..200 {
                        init_unseeded(|| LinearConfig::new(16, 16).init(&Device::flex()));
                        seed_device(&Device::flex(), t * 1000 + i);
                    }
                })
            })
            .collect();
        for _ in 0..50 {
            assert_eq!(weights(&init_seeded(5, |d| LinearConfig::new(32, 32).init(d))), reference);
        }
        noise.into_iter().for_each(|h| h.join().unwrap());
        assert_ne!(weights(&init_seeded(6, |d| LinearConfig::new(32, 32).init(d))), reference);
    }

    #[test]
    fn host_draws_follow_their_seed_and_distribution() {
        let d = Device::flex();
        let a: Vec<f32> = normal([20_000], 3, &d).into_data().try_to_vec().unwrap();
        assert_eq!(a, normal::<1>([20_000], 3, &d).into_data().try_to_vec::<f32>().unwrap());
        let mean = a.iter().sum::<f32>() / a.len() as f32;
        let var = a.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / a.len() as f32;
        assert!(mean.abs() < 0.03 && (var - 1.0).abs() < 0.05, "mean {mean} var {var}");
        let u: Vec<f32> = uniform([1000], -2.0, 2.0, 4, &d).into_data().try_to_vec().unwrap();
        assert!(u.iter().all(|&x| (-2.0..2.0).contains(&x)));
        assert_ne!(u, uniform::<1>([1000], -2.0, 2.0, 5, &d).into_data().try_to_vec::<f32>().unwrap());
    }
}
