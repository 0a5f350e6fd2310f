//! `kill -9` during training, through the real binary on `cpu`: a run killed at random moments,
//! and once while it writes a checkpoint, resumes each time from its last complete checkpoint
//! (which always verifies against its manifest) and ends with the same weights, bit for bit,
//! as a run that was never interrupted. The killed process's run-folder lock is taken over.

#![cfg(unix)]

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sidrec::train::checkpoint;

/// Every float parameter's values, in visiting order.
struct Values(Vec<Vec<f32>>);

impl ModuleVisitor for Values {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.val().into_data().try_to_vec::<f32>().unwrap());
    }
}

/// The weights of checkpoint `dir`. (`model.bpk` itself differs between two identical runs:
/// Burn's record also stores each parameter's random id.)
fn weights(dir: &Path) -> Vec<Vec<f32>> {
    let ck = checkpoint::load(dir, &Device::flex()).unwrap();
    let mut v = Values(Vec::new());
    ck.model.visit(&mut v);
    assert!(v.0.len() > 10, "the generator's parameters were visited");
    v.0
}

/// A small run of several epochs (dropout on, so resuming must restore the random streams).
fn args(out: &str) -> Vec<String> {
    let sets = [
        "synthetic.users=240",
        "synthetic.items=90",
        "synthetic.topics=4",
        "tokenizer.codebook_size=8",
        "tokenizer.epochs=20",
        "model.d_model=16",
        "model.d_kv=8",
        "model.d_ff=32",
        "model.num_layers=1",
        "model.num_decoder_layers=1",
        "model.num_heads=2",
        "model.dropout=0.2",
        "train.batch_size=32",
        "train.lr=3e-3",
        "train.epochs=8",
        "train.patience=0",
        "eval.beam_size=10",
    ];
    let mut v: Vec<String> = ["train", "synthetic", "--device", "cpu", "--out", out].map(String::from).to_vec();
    for s in sets {
        v.extend(["--set".to_string(), s.to_string()]);
    }
    v
}

fn spawn(dir: &Path, out: &str) -> Child {
    Command::new(support::sidrec_bin())
        .args(args(out))
        .current_dir(dir)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sidrec binary starts")
}

/// Runs to the end; panics with stderr on failure.
fn finish(dir: &Path, out: &str) {
    let child = spawn(dir, out);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The last checkpoint, when there is one, is complete: it (or the previous one it falls back
/// to) verifies against its manifest.
fn assert_last_checkpoint_loads(run: &Path) {
    let last = run.join("checkpoints/last");
    if checkpoint::candidates(&last).is_empty() {
        return;
    }
    let good = checkpoint::verified_existing(&last).unwrap_or_else(|e| panic!("no complete checkpoint after a kill: {e}"));
    assert!(good.is_some(), "a checkpoint folder exists but none verifies");
}

#[test]
fn a_run_killed_at_random_moments_resumes_to_the_uninterrupted_weights() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    finish(d, "whole");
    let want = weights(&d.join("whole/checkpoints/last"));

    // Kills at random moments (seeded), each followed by a check of the last checkpoint.
    let mut rng = StdRng::seed_from_u64(9);
    let run = d.join("killed");
    let mut kills = 0;
    for _ in 0..6 {
        let mut child = spawn(d, "killed");
        std::thread::sleep(Duration::from_millis(rng.random_range(150..2500)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
        assert_last_checkpoint_loads(&run);
    }
    // One kill while a checkpoint is being written: as soon as the temporary folder appears.
    let mut child = spawn(d, "killed");
    let tmp = run.join("checkpoints/last.tmp");
    let start = Instant::now();
    let mut during_write = false;
    while start.elapsed() < Duration::from_secs(120) && child.try_wait().unwrap().is_none() {
        if tmp.exists() {
            child.kill().unwrap();
            during_write = true;
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    child.wait().unwrap();
    assert_last_checkpoint_loads(&run);
    assert!(kills >= 3, "only {kills} of the random kills hit a running process");
    assert!(during_write, "the run ended before any checkpoint write was seen");

    finish(d, "killed");
    let got = weights(&run.join("checkpoints/last"));
    assert!(got == want, "the resumed run's final weights differ from the uninterrupted run's (bit for bit)");
    let state = |r: &str| std::fs::read_to_string(d.join(r).join("checkpoints/last/state.json")).unwrap();
    let (a, b): (serde_json::Value, serde_json::Value) =
        (serde_json::from_str(&state("whole")).unwrap(), serde_json::from_str(&state("killed")).unwrap());
    assert_eq!(a["epoch"], b["epoch"], "{a}\n{b}");
    assert_eq!(a["step"], b["step"], "{a}\n{b}");
    // Every epoch's losses, as f64 bit patterns, are those of the uninterrupted run.
    assert_eq!(a["log"].as_array().unwrap().len(), b["log"].as_array().unwrap().len());
    for (x, y) in a["log"].as_array().unwrap().iter().zip(b["log"].as_array().unwrap()) {
        assert_eq!((&x["train_loss"], &x["valid_loss"]), (&y["train_loss"], &y["valid_loss"]), "epoch {}", x["epoch"]);
    }
}
