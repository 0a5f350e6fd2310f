//! Codebook quantization: the custom WGSL kernel (`nearest_code`) against the pure-Burn path
//! (`nearest_code_reference`), N = 12,101 and 100,000 rows of d = 32, K = 256 codes, on
//! software wgpu (lavapipe) and the CPU backend (reference only: the kernel is wgpu-only).
//! Target: the kernel at least 3x faster than the reference on wgpu.
//!
//! ```sh
//! cargo bench --bench quantize [-- FILTER]   # e.g. -- wgpu-cpu
//! SIDREC_BENCH_DEVICES=auto SIDREC_QUANTIZE_ROWS=12101,100000 cargo bench --bench quantize -- --quick '^quantize/'
//! ```
//! `SIDREC_BENCH_DEVICES` (comma-separated `--device` names) replaces the default `wgpu-cpu,cpu`,
//! e.g. `auto` on a GPU machine; `SIDREC_QUANTIZE_ROWS` replaces the row counts. On every device
//! with the kernel, a JSON line (`"check": "quantize"`) first gives how many of the kernel's
//! indices differ from the reference's (near-ties can differ in the last float bit) and the
//! largest distance difference.
//! Two groups: `quantize` measures wall-clock time (criterion's default); `quantize-cpu` measures
//! the CPU time of this whole process (all threads, lavapipe's workers included), which another
//! job on the machine does not inflate, so the kernel/reference ratio stays meaningful on a
//! shared machine.
//!
//! Each iteration reads both outputs back to the host, so the time includes the device work
//! and the synchronisation. Iterations alternate between two codebooks: with the very same
//! inputs every time, reads on wgpu returned in a few milliseconds and the work surfaced later
//! as multi-second stalls, which made per-iteration times meaningless. Inputs are uploaded
//! once, outside the timed loop, and each case
//! runs three times untimed first: on wgpu the first calls compile shaders and autotune the
//! reference's matmul, which takes seconds and would otherwise land in a sample.

use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput};
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sidrec::kernels::quantize::{kernel_available, nearest_code, nearest_code_reference, NearestCode};

mod common;

const D: usize = 32;
const K: usize = 256;
const SIZES: [usize; 2] = [12_101, 100_000];

/// The row counts: `SIDREC_QUANTIZE_ROWS` (comma-separated), else [`SIZES`].
fn sizes() -> Vec<usize> {
    match std::env::var("SIDREC_QUANTIZE_ROWS") {
        Ok(v) if !v.trim().is_empty() => v
            .split(',')
            .map(|n| n.trim().parse().unwrap_or_else(|_| panic!("SIDREC_QUANTIZE_ROWS takes numbers, not {n:?}")))
            .collect(),
        _ => SIZES.to_vec(),
    }
}

/// Prints, as one JSON line, how far the kernel's result is from the reference's on `x`.
fn check(dev: &str, x: &Tensor<2>, codebook: &Tensor<2>) {
    let (k, r) = (nearest_code(x.clone(), codebook.clone()), nearest_code_reference(x.clone(), codebook.clone()));
    let (ki, ri) = (k.index.into_data(), r.index.into_data());
    let mismatches = ki.iter::<i64>().zip(ri.iter::<i64>()).filter(|(a, b)| a != b).count();
    let (kd, rd) = (k.dist.into_data(), r.dist.into_data());
    let diff = kd.iter::<f32>().zip(rd.iter::<f32>()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    println!(
        "{{\"check\": \"quantize\", \"device\": \"{dev}\", \"rows\": {}, \"codes\": {K}, \"index_mismatches\": {mismatches}, \"max_abs_dist_diff\": {diff:.3e}}}",
        x.dims()[0]
    );
}

type Path = fn(Tensor<2>, Tensor<2>) -> NearestCode;

fn random(rng: &mut StdRng, rows: usize, device: &Device) -> Tensor<2> {
    let data: Vec<f32> = (0..rows * D).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Tensor::from_data(TensorData::new(data, [rows, D]), device)
}

/// Reads both outputs back and waits for the device to be idle: the result is on the host and
/// no work of this call is left queued when this returns.
fn read_back(out: NearestCode, device: &Device) -> usize {
    let index = out.index.into_data();
    let dist = out.dist.into_data();
    device.sync().expect("the device syncs");
    index.num_elements() + dist.num_elements()
}

/// CPU time consumed by the whole process (every thread), in nanoseconds.
struct ProcessCpuTime;

fn process_cpu_ns() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid timespec for the call to write.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed");
    t.tv_sec as f64 * 1e9 + t.tv_nsec as f64
}

impl Measurement for ProcessCpuTime {
    type Intermediate = f64;
    type Value = f64;
    fn start(&self) -> f64 {
        process_cpu_ns()
    }
    fn end(&self, start: f64) -> f64 {
        process_cpu_ns() - start
    }
    fn add(&self, a: &f64, b: &f64) -> f64 {
        a + b
    }
    fn zero(&self) -> f64 {
        0.0
    }
    fn to_f64(&self, value: &f64) -> f64 {
        *value
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuMillis
    }
}

/// Shows nanoseconds of CPU time as milliseconds.
struct CpuMillis;

impl ValueFormatter for CpuMillis {
    fn scale_values(&self, _typical: f64, values: &mut [f64]) -> &'static str {
        values.iter_mut().for_each(|v| *v /= 1e6);
        "ms (CPU)"
    }
    fn scale_throughputs(&self, _typical: f64, _throughput: &Throughput, _values: &mut [f64]) -> &'static str {
        "ns (CPU)"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

fn wall(c: &mut Criterion) {
    quantize(c, "quantize");
}

fn cpu(c: &mut Criterion<ProcessCpuTime>) {
    quantize(c, "quantize-cpu");
}

fn quantize<M: Measurement>(c: &mut Criterion<M>, name: &str) {
    let mut group = c.benchmark_group(name);
    group.sample_size(10).sampling_mode(SamplingMode::Flat).measurement_time(Duration::from_secs(10));
    for choice in common::env_devices(&["wgpu-cpu", "cpu"]) {
        let Some((_, device)) = common::init_device(&choice) else { continue };
        let mut rng = StdRng::seed_from_u64(3);
        let codebooks = [random(&mut rng, K, &device), random(&mut rng, K, &device)];
        for n in sizes() {
            let x = random(&mut rng, n, &device);
            let mut paths: Vec<(&str, Path)> = vec![("reference", nearest_code_reference)];
            if kernel_available(&device) {
                paths.insert(0, ("kernel", nearest_code));
                if name == "quantize" {
                    check(&choice, &x, &codebooks[0]);
                }
            }
            for (name, path) in paths {
                for i in 0..3 {
                    read_back(path(x.clone(), codebooks[i % 2].clone()), &device);
                }
                let id = BenchmarkId::new(format!("{name}/{choice}"), n);
                let mut i = 0;
                group.bench_with_input(id, &x, |b, x| {
                    b.iter(|| {
                        i += 1;
                        read_back(path(x.clone(), codebooks[i % 2].clone()), &device)
                    })
                });
            }
        }
    }
    group.finish();
}

criterion_group!(wall_time, wall);
criterion_group! {
    name = cpu_time;
    config = Criterion::default().with_measurement(ProcessCpuTime);
    targets = cpu
}
criterion_main!(wall_time, cpu_time);
