//! Command-line handling shared by the plain timed benchmarks (`embed`, `beam_search`,
//! `rqvae_epoch`, `train_step`): `--flag value` arguments and the devices to run on. Each benchmark includes
//! it with `mod common;` and uses the part it needs. The criterion benchmarks (`quantize`,
//! `item_attention`), whose command line is criterion's, take their devices from
//! `SIDREC_BENCH_DEVICES` instead ([`env_devices`]).
#![allow(dead_code)]

use burn::tensor::Device;
use clap::ValueEnum;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sidrec::cli::device::DeviceChoice;
use sidrec::data::{CodeToken, SemanticIndex};
use sidrec::model::{ItemTokens, TokenVocab};

/// A benchmark's arguments, without the `--bench` that `cargo bench` adds.
pub struct Args(Vec<String>);

impl Args {
    /// The arguments of this process.
    pub fn from_env() -> Self {
        // As `sidrec` itself does (`sidrec::cli::alloc`): keep freed activations in the heap.
        sidrec::cli::alloc::keep_large_blocks();
        Args(std::env::args().skip(1).filter(|a| a != "--bench").collect())
    }

    /// The value after the first `flag`.
    pub fn value(&self, flag: &str) -> Option<String> {
        self.0.iter().position(|a| a == flag).and_then(|i| self.0.get(i + 1)).cloned()
    }

    /// The values after every `flag`, in order (a repeatable flag).
    pub fn values(&self, flag: &str) -> Vec<String> {
        self.0.windows(2).filter(|w| w[0] == flag).map(|w| w[1].clone()).collect()
    }

    /// The number after `flag`, or `default`; panics naming the flag when it is not a number.
    pub fn num(&self, flag: &str, default: usize) -> usize {
        self.value(flag).map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{flag} takes a number, not {v:?}")))
    }

    /// The devices named with `--device` (repeatable), or `default` when none is.
    pub fn devices(&self, default: &[&str]) -> Vec<String> {
        let named = self.values("--device");
        if named.is_empty() {
            default.iter().map(|d| d.to_string()).collect()
        } else {
            named
        }
    }
}

/// The devices named in `SIDREC_BENCH_DEVICES` (comma-separated `--device` names, e.g. `auto`
/// on a GPU machine), or `default` when it is unset or empty.
pub fn env_devices(default: &[&str]) -> Vec<String> {
    let named: Vec<String> = std::env::var("SIDREC_BENCH_DEVICES")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if named.is_empty() {
        default.iter().map(|d| d.to_string()).collect()
    } else {
        named
    }
}

/// Starts the device called `name` (`cpu`, `wgpu-cpu`, `wgpu`); `None`, with a message, when
/// it cannot start here (e.g. no adapter). Panics on an unknown name.
pub fn init_device(name: &str) -> Option<(DeviceChoice, Device)> {
    let choice = DeviceChoice::from_str(name, false).unwrap_or_else(|e| panic!("unknown --device {name}: {e}"));
    match choice.init() {
        Ok(device) => Some((choice, device)),
        Err(e) => {
            eprintln!("skipped {name}: {e:#}");
            None
        }
    }
}

/// A Beauty-sized catalogue: `n` items with distinct random 4 x 256 IDs (seeded).
pub fn catalogue(n: usize) -> ItemTokens {
    catalogue_of(n, 4, 256)
}

/// A catalogue of `n` items with distinct random IDs of `levels` codes from `codebook` each (seeded).
pub fn catalogue_of(n: usize, levels: usize, codebook: usize) -> ItemTokens {
    assert!((codebook as f64).powi(levels as i32) >= n as f64, "{n} items do not fit in {levels} x {codebook} IDs");
    let mut rng = StdRng::seed_from_u64(3);
    let mut seen = std::collections::HashSet::new();
    let mut ids = Vec::with_capacity(n);
    while ids.len() < n {
        let id: Vec<CodeToken> = (0..levels as u8).map(|l| CodeToken::sem(l, rng.random_range(0..codebook as u32))).collect();
        if seen.insert(id.clone()) {
            ids.push(id);
        }
    }
    ItemTokens::new(TokenVocab::new(vec![codebook; levels]), &SemanticIndex { ids }).expect("distinct ids")
}
