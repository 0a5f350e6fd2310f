//! Generator training throughput (sequences/s) at TIGER's sizes (SPEC section 3) with
//! Beauty-shaped batches: 256 examples of full 20-item histories (81 encoder tokens) over a
//! 12,101-item catalogue of 4 x 256 IDs. One step = forward, loss, backward, global gradient
//! clipping and the AdamW update, as `sidrec train` runs it. `--model discrec` times DiscRec.
//!
//! ```sh
//! cargo bench --bench train_step -- --device cpu --device wgpu-cpu [--batch 256] [--steps 5] \
//!     [--model tiger|discrec] [--config configs/quickstart.toml] [--history 20] [--items 12101] \
//!     [--levels 4] [--codebook 256] [--matmul auto|burn|tiled]
//! ```
//! `--config` takes the `[model]` section (sizes, kind) from a run config instead of SPEC's
//! defaults; with the quickstart's config and `--history 10 --items 724 --levels 4 --codebook 32
//! --batch 128` it times the quickstart's training step.
//! A plain timed binary, not criterion: one step takes seconds on two cores.

mod common;

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use common::{catalogue_of, init_device, Args};
use sidrec::cli::config::RunConfig;
use sidrec::kernels::matmul::{set_policy, MatmulPolicy};
use std::path::Path;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sidrec::model::{Generator, GeneratorKind, ModelConfig};
use sidrec::train::clip::clip_global_norm;

fn main() {
    let args = Args::from_env();
    let (batch, steps, n_items) = (args.num("--batch", 256), args.num("--steps", 5), args.num("--items", 12_101));
    let history = args.num("--history", 20);
    let mut cfg = match args.value("--config") {
        Some(path) => RunConfig::load(Some(Path::new(&path)), &[]).unwrap_or_else(|e| panic!("{e}")).model,
        None => ModelConfig::default(),
    };
    match args.value("--model").as_deref() {
        None => {}
        Some("tiger") => cfg.kind = GeneratorKind::Tiger,
        Some("discrec") => cfg.kind = GeneratorKind::Discrec,
        Some(other) => panic!("unknown --model {other}"),
    }
    let kind = cfg.kind;
    // `--matmul burn` times Burn's own matmul kernels on a software adapter, for comparison.
    match args.value("--matmul").as_deref() {
        None | Some("auto") => {}
        Some("burn") => set_policy(MatmulPolicy::Burn),
        Some("tiled") => set_policy(MatmulPolicy::Tiled),
        Some(other) => panic!("unknown --matmul {other}"),
    }
    let items = catalogue_of(n_items, args.num("--levels", 4), args.num("--codebook", 256));
    let mut rng = StdRng::seed_from_u64(1);
    let mut batch_of = || {
        let h: Vec<Vec<u32>> = (0..batch).map(|_| (0..history).map(|_| rng.random_range(0..n_items as u32)).collect()).collect();
        let refs: Vec<&[u32]> = h.iter().map(Vec::as_slice).collect();
        let targets: Vec<u32> = (0..batch).map(|i| h[i][0]).collect();
        (items.encoder_input(&refs), items.decoder_input(&targets))
    };
    let batches: Vec<_> = (0..steps + 1).map(|_| batch_of()).collect();
    for dev in args.devices(&["cpu"]) {
        let Some((_, base)) = init_device(&dev) else { continue };
        let ad = base.clone().autodiff();
        let mut model = Generator::new(&cfg, items.vocab(), items.max_len(), &base).expect("model").to_device(&ad).train();
        let params = model.num_params();
        let mut optim = AdamWConfig::new().with_weight_decay(0.01).with_epsilon(1e-8).init();
        let mut step = |model: Generator, b: &(sidrec::model::EncoderInput, sidrec::model::DecoderInput)| {
            let loss = model.loss(&b.0.to_device(&ad), &b.1.to_device(&ad));
            let mut grads = GradientsParams::from_grads(loss.backward(), &model);
            clip_global_norm(&model, &mut grads, 1.0);
            optim.step(5e-4, model, grads)
        };
        // Warm-up: compiles the kernels of the batch's shapes and autotunes.
        let start = Instant::now();
        model = step(model, &batches[0]);
        base.sync().expect("sync");
        eprintln!("{dev}: warm-up step {:.1} s", start.elapsed().as_secs_f64());
        let start = Instant::now();
        for b in &batches[1..] {
            model = step(model, b);
        }
        base.sync().expect("sync");
        let s = start.elapsed().as_secs_f64() / steps as f64;
        println!(
            "{{\"device\": \"{dev}\", \"model\": \"{kind}\", \"params\": {params}, \"batch\": {batch}, \"encoder_tokens\": {}, \"s_per_step\": {s:.3}, \"sequences_per_s\": {:.1}}}",
            items.max_len() * history + 1,
            batch as f64 / s
        );
    }
}
