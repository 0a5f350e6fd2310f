//! Matrix products on a software adapter: Burn's matmul kernels against sidrec's tiled kernel
//! (`shaders/matmul.wgsl`) on the shapes of the quickstart's T5 (d_model 64, d_ff 256, batch 128
//! of 41 encoder tokens, 4 heads of 16): the linear layers' `[5248, d_in] @ [d_in, d_out]`, their
//! weight gradients `[d_in, 5248] @ [5248, d_out]`, and attention's `[512, 41, 16] @ [512, 16,
//! 41]`, `[512, 41, 41] @ [512, 41, 16]` and the gradient `[512, 16, 41] @ [512, 41, 41]`.
//! Also checks that the two agree.
//!
//! ```sh
//! cargo bench --bench matmul -- --device wgpu-cpu [--reps 10]
//! ```
//! A plain timed binary: each product runs `--reps` times between two device syncs, after two
//! warm-up runs (kernel compilation, Burn's autotuning).

mod common;

use std::time::Instant;

use burn::tensor::{Distribution, Tensor};
use common::{init_device, Args};
use sidrec::kernels::matmul::{matmul, set_policy, MatmulPolicy};

fn main() {
    let args = Args::from_env();
    let reps = args.num("--reps", 10);
    for dev in args.devices(&["wgpu-cpu"]) {
        let Some((_, device)) = init_device(&dev) else { continue };
        let shapes = [
            (1, 5248, 64, 64),
            (1, 5248, 64, 256),
            (1, 5248, 256, 64),
            (1, 64, 5248, 64),
            (1, 64, 5248, 256),
            (512, 41, 16, 41),
            (512, 41, 41, 16),
            (512, 16, 41, 41),
        ];
        for (b, m, k, n) in shapes {
            let a: Tensor<3> = Tensor::random([b, m, k], Distribution::Default, &device);
            let w: Tensor<3> = Tensor::random([b, k, n], Distribution::Default, &device);
            let mut line = format!("{dev} [{b}, {m}, {k}] @ [{b}, {k}, {n}]:");
            let mut results = vec![];
            for (name, policy) in [("burn", MatmulPolicy::Burn), ("tiled", MatmulPolicy::Tiled)] {
                set_policy(policy);
                for _ in 0..2 {
                    let _ = matmul(a.clone(), w.clone()).into_data();
                }
                device.sync().expect("sync");
                let start = Instant::now();
                let outs: Vec<_> = (0..reps).map(|_| matmul(a.clone(), w.clone())).collect();
                device.sync().expect("sync");
                let s = start.elapsed().as_secs_f64() / reps as f64;
                drop(outs);
                results.push(matmul(a.clone(), w.clone()));
                line += &format!("  {name} {:.2} ms ({:.2} GFLOP/s)", s * 1e3, 2.0 * (b * m * k * n) as f64 / s / 1e9);
            }
            let diff: f32 = (results[0].clone() - results[1].clone()).abs().max().into_scalar();
            println!("{line}  max |diff| {diff:.1e}");
        }
    }
}
