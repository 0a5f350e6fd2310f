//! Generator inference speed at SPEC's sizes (section 3), TIGER and DiscRec: the teacher-forced
//! forward and constrained beam search (20 beams, 20 returned) over a Beauty-sized catalogue
//! (12,101 items with distinct random 4 x 256 IDs), with full 20-item histories (81 encoder
//! tokens). The trie ends every ID with EOS, as `eval`, `recommend` and the PyTorch reference
//! do, so a search takes 5 decoder steps. The models have seeded random weights: speed does not
//! depend on them.
//!
//! ```sh
//! cargo bench --bench beam_search -- --device cpu --device wgpu-cpu [--model tiger] \
//!     [--model discrec] [--batch 64] [--batches 4] [--beam 20] [--items 12101]
//! ```
//! A plain timed binary, not criterion: one beam-search batch takes seconds on two cores.

mod common;

use std::time::Instant;

use burn::tensor::Device;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use common::catalogue;
use burn::module::Module;
use sidrec::decode::{beam_search, Trie};
use sidrec::model::{Generator, GeneratorKind, ModelConfig};

fn histories(users: usize, items: usize, seed: u64) -> Vec<Vec<u32>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..users).map(|_| (0..20).map(|_| rng.random_range(0..items as u32)).collect()).collect()
}

fn sync(device: &Device) {
    device.sync().expect("device sync");
}

fn main() {
    let args = common::Args::from_env();
    let (batch, batches, beam, n_items) =
        (args.num("--batch", 64), args.num("--batches", 4), args.num("--beam", 20), args.num("--items", 12_101));
    let devices = args.devices(&["cpu"]);
    let kinds = match args.values("--model") {
        v if v.is_empty() => vec![GeneratorKind::Tiger, GeneratorKind::Discrec],
        v => v
            .iter()
            .map(|k| match k.as_str() {
                "tiger" => GeneratorKind::Tiger,
                "discrec" => GeneratorKind::Discrec,
                other => panic!("--model takes tiger or discrec, not {other:?}"),
            })
            .collect(),
    };
    let items = catalogue(n_items);
    for (dev, kind) in devices.iter().flat_map(|d| kinds.iter().map(move |k| (d, *k))) {
        let Some((_, device)) = common::init_device(dev) else { continue };
        let cfg = ModelConfig { kind, ..Default::default() };
        let model = sidrec::seed::try_init_seeded(0, |host| Generator::new(&cfg, items.vocab(), items.max_len(), host))
            .expect("SPEC-size generator")
            .to_device(&device);
        let start = Instant::now();
        let trie = Trie::new(&items, true, &device).expect("trie");
        sync(&device);
        let trie_s = start.elapsed().as_secs_f64();

        let run_forward = |h: &[Vec<u32>]| {
            let refs: Vec<&[u32]> = h.iter().map(Vec::as_slice).collect();
            let enc = model.encoder_batch(&items.encoder_input(&refs), &device);
            let targets: Vec<u32> = h.iter().map(|x| x[0]).collect();
            let dec = items.decoder_input(&targets).to_device(&device);
            model.loss(&enc, &dec).into_scalar::<f32>()
        };
        let run_beam = |h: &[Vec<u32>]| {
            let refs: Vec<&[u32]> = h.iter().map(Vec::as_slice).collect();
            let enc = model.encoder_batch(&items.encoder_input(&refs), &device);
            beam_search(&model, &enc, &trie, beam, beam)
        };
        // Warm-up: compiles the kernels of one batch's shapes.
        let start = Instant::now();
        run_forward(&histories(batch, n_items, 0));
        eprintln!("{dev} {kind}: warm-up forward {:.1} s", start.elapsed().as_secs_f64());
        run_beam(&histories(batch, n_items, 0));
        eprintln!("{dev} {kind}: warm-up beam search done at {:.1} s", start.elapsed().as_secs_f64());
        let start = Instant::now();
        for b in 0..batches {
            run_forward(&histories(batch, n_items, 1 + b as u64));
        }
        let forward_s = start.elapsed().as_secs_f64() / batches as f64;
        let start = Instant::now();
        let mut returned = 0;
        for b in 0..batches {
            returned += run_beam(&histories(batch, n_items, 1 + b as u64)).iter().map(Vec::len).sum::<usize>();
        }
        let beam_s = start.elapsed().as_secs_f64() / batches as f64;
        assert_eq!(returned, batches * batch * beam);
        println!(
            "{{\"device\": \"{dev}\", \"model\": \"{kind}\", \"items\": {n_items}, \"params\": {}, \"decoder_steps\": {}, \"trie_build_s\": {trie_s:.3}, \"batch\": {batch}, \"beam\": {beam}, \"forward_s_per_batch\": {forward_s:.3}, \"beam_search_s_per_batch\": {beam_s:.3}, \"beam_search_users_per_s\": {:.1}}}",
            model.num_params(),
            trie.depth(),
            batch as f64 / beam_s
        );
    }
}
