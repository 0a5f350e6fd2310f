//! Helpers of the data-parallel tests (`tests/distributed.rs`, `tests/mpi.rs`): a tiny training
//! run of the `sidrec` binary and the weights of its checkpoints.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};

/// `sidrec train` on a small synthetic dataset with a tiny model, dropout off, 256 examples a
/// global batch, `steps` steps an epoch; `extra` is appended (more `--set`s, `--devices`).
pub fn train_args(out: &Path, kind: &str, epochs: usize, steps: usize, extra: &[&str]) -> Vec<String> {
    let mut sets: Vec<String> = [
        "synthetic.users=400",
        "synthetic.items=120",
        "synthetic.topics=6",
        "data.max_len=5",
        "tokenizer.kind=\"rqkmeans\"",
        "tokenizer.levels=2",
        "tokenizer.codebook_size=16",
        "model.d_model=16",
        "model.d_kv=8",
        "model.num_heads=2",
        "model.d_ff=32",
        "model.num_layers=1",
        "model.num_decoder_layers=1",
        "model.dropout=0.0",
        "model.sasrec.hidden=16",
        "model.sasrec.blocks=1",
        "model.sasrec.max_len=8",
        "model.sasrec.dropout=0.0",
        "train.batch_size=256",
        "train.lr=0.003",
        "train.patience=0",
        "train.log_every=1",
        "eval.beam_size=10",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    sets.push(format!("model.kind=\"{kind}\""));
    sets.push(format!("train.epochs={epochs}"));
    sets.push(format!("train.max_batches_per_epoch={steps}"));
    let mut args: Vec<String> = vec!["train".into(), "synthetic".into(), "--device".into(), "cpu".into(), "--out".into(), out.display().to_string()];
    for s in sets {
        args.push("--set".into());
        args.push(s);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Runs the `sidrec` binary with `args`.
pub fn sidrec(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sidrec")).args(args).env("XDG_RUNTIME_DIR", std::env::temp_dir()).output().expect("sidrec runs")
}

/// Asserts success, showing stderr otherwise.
pub fn ok(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what} failed ({:?}):\n{stderr}\n{}", out.status, String::from_utf8_lossy(&out.stdout));
    stderr
}

struct Collect(Vec<f32>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.extend(param.val().into_data().convert::<f32>().try_into_vec::<f32>().unwrap());
    }
}

fn flat<M: Module>(m: &M) -> Vec<f32> {
    let mut c = Collect(Vec::new());
    m.visit(&mut c);
    c.0
}

/// Every weight of the checkpoint `<run>/checkpoints/<which>` (a generator or SASRec), in
/// visiting order.
pub fn weights(run: &Path, which: &str) -> Vec<f32> {
    let dir = run.join("checkpoints").join(which);
    let device = Device::flex();
    match sidrec::train::checkpoint::load(&dir, &device) {
        Ok(ck) => flat(&ck.model),
        Err(_) => flat(&sidrec::train::sasrec_task::load(&dir, &device).expect("a checkpoint").model),
    }
}

/// The largest absolute difference between two weight vectors of the same model.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "the same model");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The weights' epoch log (`metrics.jsonl`): train and validation loss per epoch.
pub fn losses(run: &Path) -> Vec<(f64, f64)> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["train_loss"].as_f64().unwrap(), v["valid_loss"].as_f64().unwrap())
        })
        .collect()
}
