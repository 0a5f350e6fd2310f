//! Exact resumption of an interrupted training run (its own test binary: the CPU backend's
//! random generator is process-wide, so no other test may draw from it meanwhile).

use std::path::Path;

use burn::tensor::Device;
use sidrec::cli::config::RunConfig;
use sidrec::cli::run::prepare;
use sidrec::data::SemanticIndex;
use sidrec::model::{ItemTokens, ModelConfig};
use sidrec::train::checkpoint::{self, GeneratorSpec};
use sidrec::train::trainer::{checkpoint_dirs, train, TrainInputs, TrainOutcome};
use sidrec::train::TrainConfig;

fn setup() -> (RunConfig, sidrec::cli::run::Prepared, SemanticIndex) {
    let sets: Vec<String> = ["synthetic.users=60", "synthetic.items=40", "synthetic.topics=4", "data.max_len=5", "run.device=cpu"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let cfg = RunConfig::load(None, &sets).unwrap();
    let p = prepare(&cfg).unwrap();
    // A hand-made collision-free index: 3 levels of 4 codes.
    let codes: Vec<Vec<u32>> = (0..p.ds.num_items() as u32).map(|i| vec![i % 4, (i / 4) % 4, i / 16]).collect();
    (cfg, p, SemanticIndex::from_codes(&codes))
}

fn tiny_model() -> ModelConfig {
    ModelConfig {
        d_model: 16,
        d_kv: 8,
        d_ff: 32,
        num_layers: 1,
        num_decoder_layers: 1,
        num_heads: 2,
        relative_attention_num_buckets: 8,
        relative_attention_max_distance: 16,
        dropout: 0.2,
        ..Default::default()
    }
}

fn run(dir: &Path, epochs: usize, stop_after: usize) -> TrainOutcome {
    let (_cfg, p, index) = setup();
    let items = ItemTokens::from_index(&index).unwrap();
    let spec = GeneratorSpec::generator(tiny_model(), &items, 5, "synthetic".into());
    let cfg = TrainConfig { epochs, batch_size: 32, lr: 3e-3, patience: 0, log_every: 1, ..Default::default() };
    let inp = TrainInputs {
        ds: &p.ds,
        split: &p.split,
        index: &index,
        items: &items,
        item_ids: &p.ds.items,
        spec,
        cfg: &cfg,
        eval: &sidrec::eval::EvalConfig::default(),
        pop: &p.pop,
        seed: 7,
        device: Device::flex(),
        fixed_shapes: false,
        dir: dir.to_path_buf(),
    };
    train(&inp, |l| l.epoch < stop_after).unwrap()
}

#[test]
fn an_interrupted_run_resumes_into_the_same_run() {
    let straight = tempfile::tempdir().unwrap();
    let a = run(straight.path(), 3, usize::MAX);
    assert_eq!(a.state.epoch, 3);
    assert!(a.resumed_from.is_none());
    let broken = tempfile::tempdir().unwrap();
    let first = run(broken.path(), 3, 1);
    assert_eq!(first.state.epoch, 1);
    let b = run(broken.path(), 3, usize::MAX);
    assert_eq!(b.resumed_from, Some(1));
    // Same losses, bit for bit, and the same final weights.
    assert_eq!(a.state.log, b.state.log.iter().cloned().map(|mut l| {
        l.seconds = a.state.log[l.epoch - 1].seconds;
        l.train_examples_per_s = a.state.log[l.epoch - 1].train_examples_per_s;
        l
    }).collect::<Vec<_>>());
    let device = Device::flex();
    let (ca, cb) = (checkpoint::load(&checkpoint_dirs(straight.path()).0, &device).unwrap(), checkpoint::load(&checkpoint_dirs(broken.path()).0, &device).unwrap());
    let wa = ca.model.t5.shared.weight.val().into_data();
    let wb = cb.model.t5.shared.weight.val().into_data();
    assert_eq!(wa, wb);
    let qa = ca.model.t5.decoder.block[0].self_attention.attention.q.weight.val().into_data();
    let qb = cb.model.t5.decoder.block[0].self_attention.attention.q.weight.val().into_data();
    assert_eq!(qa, qb);
    // Training did something: the loss went down.
    assert!(a.state.log[2].train_loss < a.state.log[0].train_loss, "{:?}", a.state.log);
    for f in ["metrics.jsonl", "training.png", "checkpoints/last/optimizer.bpk", "checkpoints/best/model.bpk"] {
        assert!(straight.path().join(f).is_file(), "{f} missing");
    }
    assert!(!straight.path().join("checkpoints/best/optimizer.bpk").exists());
    // A finished run started again does nothing more.
    let again = run(straight.path(), 3, usize::MAX);
    assert_eq!(again.state.log.len(), 3);
}

