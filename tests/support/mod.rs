//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `sidrec` binary with `args` in `cwd`.
pub fn sidrec(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sidrec"))
        .args(args)
        .current_dir(cwd)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .expect("the sidrec binary runs")
}

/// Asserts that `out` failed cleanly: non-zero exit, no panic, and stderr containing every
/// string of `expected`.
pub fn assert_clean_failure(out: &Output, expected: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, got success; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "panicked: {stderr}");
    for e in expected {
        assert!(stderr.contains(e), "stderr should contain {e:?}: {stderr}");
    }
}

/// The folder of fetched public datasets (`SIDREC_DATA_DIR`, else `~/.cache/sidrec/data`),
/// or `None` with a message saying how to get it. When `SIDREC_REQUIRE_DATA` is set (CI),
/// missing data is a failure instead.
pub fn data_dir(name: &str) -> Option<PathBuf> {
    let base = std::env::var_os("SIDREC_DATA_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/sidrec/data")));
    let dir = base.map(|b| b.join(name)).filter(|d| d.is_dir());
    if dir.is_none() {
        let msg = format!("dataset {name} not found: run `bash .ci/fetch-data` (or set SIDREC_DATA_DIR)");
        assert!(std::env::var_os("SIDREC_REQUIRE_DATA").is_none(), "{msg}");
        eprintln!("skipped: {msg}");
    }
    dir
}

/// The shared Amazon Beauty folder beside the repository, if present.
pub fn beauty_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/amazon-beauty-2014");
    if !dir.is_dir() {
        eprintln!("skipped: ../shared/data/amazon-beauty-2014 is absent (team-internal data)");
        return None;
    }
    Some(dir)
}
