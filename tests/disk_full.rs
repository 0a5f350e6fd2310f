//! A disk that fills up while sidrec writes, on a small tmpfs: training that cannot write its
//! next checkpoint, and evaluation that cannot write its metrics, stop with an error naming the
//! file and the problem (no panic), and leave the previous files exactly as they were; once
//! there is space again the run resumes from them.
//!
//! Mounting a tmpfs needs root (or CAP_SYS_ADMIN); elsewhere the test says so and skips.

#![cfg(target_os = "linux")]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{sidrec, snapshot, snapshot_diff};

/// A tmpfs of `size` mounted on a fresh folder, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system, leaving about `leave` bytes free, with `filler`.
    fn fill(&self, leave: u64) -> PathBuf {
        let stat = nix_free_bytes(self.path());
        let filler = self.path().join("filler");
        let size = stat.saturating_sub(leave);
        std::fs::write(&filler, vec![0u8; size as usize]).unwrap();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Free bytes on the file system holding `path` (from `df`, to need no extra crate).
fn nix_free_bytes(path: &Path) -> u64 {
    let out = Command::new("df").args(["-B1", "--output=avail"]).arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().trim().parse().unwrap()
}

const TINY: &[&str] = &[
    "--set", "synthetic.users=240", "--set", "synthetic.items=90", "--set", "synthetic.topics=4",
    "--set", "tokenizer.kind=rqkmeans", "--set", "tokenizer.levels=3", "--set", "tokenizer.codebook_size=8",
    "--set", "model.d_model=16", "--set", "model.d_kv=8", "--set", "model.d_ff=32", "--set", "model.num_layers=1",
    "--set", "model.num_decoder_layers=1", "--set", "model.num_heads=2", "--set", "train.batch_size=32",
    "--set", "train.patience=0", "--set", "eval.beam_size=10",
];

fn train(cwd: &Path, epochs: usize) -> std::process::Output {
    let epochs = format!("train.epochs={epochs}");
    let mut args = vec!["train", "synthetic", "--device", "cpu", "--out", "run", "--set", &epochs];
    args.extend_from_slice(TINY);
    sidrec(cwd, &args)
}

fn assert_clean_error(out: &std::process::Output, names: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it succeeded on a full disk: {stderr}");
    assert_ne!(out.status.code(), Some(101), "a panic: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("No space left on device"), "the problem is not named: {stderr}");
    assert!(stderr.contains(names), "{names} is not named: {stderr}");
    eprintln!("on a full disk: {}", stderr.lines().last().unwrap_or_default());
}

#[test]
fn a_full_disk_leaves_the_previous_checkpoints_and_metrics_intact() {
    let fs = match Tmpfs::mount("24m") {
        Ok(fs) => fs,
        Err(e) => {
            eprintln!("skipped: cannot mount a tmpfs here ({e}); run as root to test a full disk");
            return;
        }
    };
    let d = fs.path();
    let out = train(d, 1);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let before = snapshot(&d.join("run"));

    // Room for the lock, the config and the id maps, not for a checkpoint.
    let filler = fs.fill(48 << 10);
    let out = train(d, 2);
    assert_clean_error(&out, "run/checkpoints");
    let after = snapshot(&d.join("run"));
    let changed: Vec<String> = snapshot_diff(&before, &after)
        .into_iter()
        .filter(|p| p.contains("checkpoints") || p.contains("metrics") || p.contains("tokenizer"))
        .collect();
    assert!(changed.is_empty(), "files changed on the full disk: {changed:?}");

    // Evaluation on a full disk: the run's metrics.json stays as it was.
    let metrics = std::fs::read(d.join("run/metrics.json")).unwrap();
    let mut fill_up = std::fs::OpenOptions::new().append(true).open(&filler).unwrap();
    let rest = vec![0u8; nix_free_bytes(d) as usize];
    let _ = std::io::Write::write_all(&mut fill_up, &rest); // up to ENOSPC: the disk is full
    drop(fill_up);
    let mut args = vec!["eval", "synthetic", "--device", "cpu", "--checkpoint", "run/checkpoints/best", "--out", "run"];
    args.extend_from_slice(TINY);
    let out = sidrec(d, &args);
    assert_clean_error(&out, "run");
    assert_eq!(std::fs::read(d.join("run/metrics.json")).unwrap(), metrics, "metrics.json changed");

    // With space again, the run resumes from its intact checkpoint and finishes.
    std::fs::remove_file(&filler).unwrap();
    let out = train(d, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("resumed from the checkpoint of epoch 1"), "{stderr}");
}
