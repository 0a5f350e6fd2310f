//! Data-parallel training over MPI (the `mpi` feature; `.ci/run` runs it after the default
//! tests): two ranks started by `mpirun` on loopback against one process with the whole batch,
//! resuming with another rank count, and what happens when a rank dies or hangs.
//!
//! Needs `mpirun` (Debian: openmpi-bin); ranks run as root in CI, hence `--allow-run-as-root`.

mod dp;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use dp::{losses, max_abs_diff, ok, sidrec, train_args, weights};

/// See `tests/distributed.rs` for why the weights may differ at all, and by how much.
const TOLERANCE: f32 = 1e-5;

/// `mpirun -np <np>` of the `sidrec` binary on loopback only (TCP between the ranks, no shared
/// memory transport, which containers often lack).
fn mpirun(np: usize, args: &[String], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new("mpirun");
    c.args(["--allow-run-as-root", "--oversubscribe", "-np", &np.to_string()]);
    c.args(["--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include", "lo", "--mca", "oob_tcp_if_include", "lo"]);
    for (k, v) in env {
        c.env(k, v);
        c.args(["-x", k]);
    }
    c.arg(env!("CARGO_BIN_EXE_sidrec")).args(args).env("XDG_RUNTIME_DIR", std::env::temp_dir());
    c
}

fn run(mut c: Command) -> Output {
    c.output().expect("mpirun runs (apt-get install openmpi-bin)")
}

#[test]
fn two_mpi_ranks_train_the_weights_of_one_process_with_the_whole_batch() {
    for kind in ["tiger", "sasrec"] {
        let one = tempfile::tempdir().unwrap();
        let two = tempfile::tempdir().unwrap();
        let t = Instant::now();
        ok(&sidrec(&train_args(one.path(), kind, 2, 3, &[])), "one process");
        let t_one = t.elapsed();
        let t = Instant::now();
        let stderr = ok(&run(mpirun(2, &train_args(two.path(), kind, 2, 3, &[]), &[])), "mpirun -np 2");
        let t_two = t.elapsed();
        assert!(stderr.contains("MPI: 2 ranks; rank 0 on"), "{stderr}");
        assert!(stderr.contains("data parallel: 2 rank(s) x 1 replica(s); global batch 256 (128 per replica)"), "{stderr}");
        // Rank 0 alone reports: one summary line per epoch.
        assert_eq!(stderr.matches("epoch   1:").count(), 1, "{stderr}");
        let d = max_abs_diff(&weights(one.path(), "last"), &weights(two.path(), "last"));
        eprintln!("{kind}: 1 process vs 2 MPI ranks: max |diff| {d:.3e}; {:.1}s and {:.1}s", t_one.as_secs_f64(), t_two.as_secs_f64());
        assert!(d <= TOLERANCE, "{kind}: 2 ranks differ from 1 process by {d:e}");
        let (l1, l2) = (losses(one.path()), losses(two.path()));
        for ((a, va), (b, vb)) in l1.iter().zip(&l2) {
            assert!((a - b).abs() < 1e-5 * a.abs() && (va - vb).abs() < 1e-5 * va.abs(), "{kind}: losses {l1:?} vs {l2:?}");
        }
        // Both levels at once: 2 ranks x 2 in-process replicas, 64 examples each.
        let four = tempfile::tempdir().unwrap();
        let stderr = ok(&run(mpirun(2, &train_args(four.path(), kind, 2, 3, &["--devices", "2"]), &[])), "mpirun -np 2 --devices 2");
        assert!(stderr.contains("data parallel: 2 rank(s) x 2 replica(s); global batch 256 (64 per replica)"), "{stderr}");
        let d = max_abs_diff(&weights(one.path(), "last"), &weights(four.path(), "last"));
        eprintln!("{kind}: 1 process vs 2 ranks x 2 replicas: max |diff| {d:.3e}");
        assert!(d <= TOLERANCE, "{kind}: 2 x 2 replicas differ from 1 process by {d:e}");
    }
}

/// A run trained by two ranks for an epoch and resumed by one process ends where a run trained
/// by one process throughout ends (the global batch, and so the settings, are the same).
#[test]
fn a_two_rank_run_resumes_in_one_process() {
    let mixed = tempfile::tempdir().unwrap();
    let plain = tempfile::tempdir().unwrap();
    ok(&run(mpirun(2, &train_args(mixed.path(), "tiger", 1, 3, &[]), &[])), "mpirun, epoch 1");
    ok(&sidrec(&train_args(plain.path(), "tiger", 1, 3, &[])), "one process, epoch 1");
    let resumed = ok(&sidrec(&train_args(mixed.path(), "tiger", 2, 3, &[])), "one process, epoch 2");
    assert!(resumed.contains("resumed from the checkpoint of epoch 1"), "{resumed}");
    ok(&sidrec(&train_args(plain.path(), "tiger", 2, 3, &[])), "one process, epoch 2");
    let d = max_abs_diff(&weights(mixed.path(), "last"), &weights(plain.path(), "last"));
    eprintln!("2 ranks then 1 process vs 1 process: max |diff| {d:.3e}");
    assert!(d <= TOLERANCE, "{d:e}");
    // And the other way round: one process's checkpoint resumed by two ranks.
    ok(&run(mpirun(2, &train_args(plain.path(), "tiger", 3, 3, &[]), &[])), "mpirun, epoch 3");
    ok(&sidrec(&train_args(mixed.path(), "tiger", 3, 3, &[])), "one process, epoch 3");
    let d = max_abs_diff(&weights(mixed.path(), "last"), &weights(plain.path(), "last"));
    assert!(d <= TOLERANCE, "{d:e}");
}

/// The pid of the rank `rank` of the job tagged `tag` (from /proc: the launcher passes the tag
/// to every rank).
fn rank_pid(tag: &str, rank: usize) -> Option<i32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(env) = std::fs::read(entry.path().join("environ")) else { continue };
        let vars: Vec<&[u8]> = env.split(|&b| b == 0).collect();
        let has = |v: &str| vars.iter().any(|x| *x == v.as_bytes());
        if has(&format!("SIDREC_TEST_TAG={tag}")) && has(&format!("OMPI_COMM_WORLD_RANK={rank}")) {
            return Some(pid);
        }
    }
    None
}

/// Starts a long two-rank run, waits for its first checkpoint, does `what` to rank 1, and
/// returns mpirun's exit, its stderr and how long it took to end after that.
fn disturb_rank_one(dir: &Path, signal: i32, env: &[(&str, &str)]) -> (Output, Duration) {
    let tag = format!("{}-{signal}", std::process::id());
    let mut env = env.to_vec();
    env.push(("SIDREC_TEST_TAG", &tag));
    let mut c = mpirun(2, &train_args(dir, "tiger", 500, 3, &[]), &env);
    let child: Child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    let ck = dir.join("checkpoints/last/generator.json");
    while !ck.is_file() {
        assert!(started.elapsed() < Duration::from_secs(300), "no checkpoint after 300 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = rank_pid(&tag, 1).expect("rank 1 is running");
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    let at = Instant::now();
    let out = child.wait_with_output().unwrap();
    (out, at.elapsed())
}

/// The newest checkpoint (the last one, or the one before it if rank 0 died between a save's
/// two renames) verifies against its manifest and loads.
fn assert_checkpoint_intact(dir: &Path) {
    let last = dir.join("checkpoints/last");
    let found = sidrec::train::checkpoint::verified_existing(&last).expect("the last checkpoint verifies").expect("a checkpoint");
    let ck = sidrec::train::checkpoint::load(&found, &burn::tensor::Device::flex()).expect("the last checkpoint loads");
    assert!(ck.state.epoch >= 1);
}

#[test]
fn a_killed_rank_ends_the_job_promptly_and_leaves_the_last_checkpoint_intact() {
    let dir = tempfile::tempdir().unwrap();
    let (out, took) = disturb_rank_one(dir.path(), libc::SIGKILL, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("killed rank 1: mpirun ended {:.1}s later with {:?}", took.as_secs_f64(), out.status);
    assert!(!out.status.success(), "{stderr}");
    assert!(took < Duration::from_secs(60), "took {took:?}");
    assert!(stderr.contains("rank 1") && (stderr.contains("signal 9") || stderr.contains("Killed")), "{stderr}");
    assert_checkpoint_intact(dir.path());
}

#[test]
fn a_hung_rank_makes_the_others_stop_with_a_clear_error_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (out, took) = disturb_rank_one(dir.path(), libc::SIGSTOP, &[("SIDREC_MPI_TIMEOUT_S", "5")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("stopped rank 1: mpirun ended {:.1}s later with {:?}", took.as_secs_f64(), out.status);
    assert!(!out.status.success(), "{stderr}");
    assert!(took < Duration::from_secs(60), "took {took:?}");
    assert!(stderr.contains("MPI rank 0 of 2") && stderr.contains("did not complete within 5 s"), "{stderr}");
    assert_checkpoint_intact(dir.path());
}
