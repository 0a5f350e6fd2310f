//! What every command shares: loading the configured dataset with its split and popularity
//! buckets, and preparing the run folder (effective config, id maps).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::config::RunConfig;
use super::lock::RunLock;
use crate::data::{formats, Dataset, Popularity, Split, Synthetic};

/// A dataset ready for training and evaluation.
pub struct Prepared {
    /// Sequences over the dense catalogue.
    pub ds: Dataset,
    /// Leave-one-out split with the configured history window.
    pub split: Split,
    /// Training popularity and head/tail buckets.
    pub pop: Popularity,
    /// The generator's output, when the dataset is the embedded synthetic one.
    pub synthetic: Option<Synthetic>,
}

/// Loads `cfg.data.dataset` (`synthetic` or a path), filters, remaps and splits it.
pub fn prepare(cfg: &RunConfig) -> Result<Prepared> {
    let opts = cfg.data.options();
    let (ds, synthetic) = if cfg.data.dataset == "synthetic" {
        let syn = cfg.synthetic.generate();
        let ds = Dataset::from_log(syn.log.clone(), &opts)?;
        (ds, Some(syn))
    } else {
        let path = expand_home(&cfg.data.dataset);
        let log = formats::load(&path, cfg.data.format)?;
        (Dataset::from_log(log, &opts)?, None)
    };
    let split = Split::leave_one_out(&ds, cfg.data.max_len);
    let pop = Popularity::from_training(&ds, cfg.data.head_fraction);
    Ok(Prepared { ds, split, pop, synthetic })
}

/// Expands a leading `~/` to the home folder, so configs can name the data cache portably.
pub fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// A run folder, locked for this command until dropped ([`RunLock`]). Reads as its path.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    _lock: RunLock,
}

impl std::ops::Deref for RunDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for RunDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

/// Creates the run folder (`run.out_dir`, default `runs/<command>`), locks it for this command
/// (a second command on it is refused, naming this process) and writes the effective config
/// into it.
pub fn run_dir(cfg: &RunConfig, command: &str) -> Result<RunDir> {
    let dir = open_run_dir(cfg, command)?;
    dir.write_config(cfg)?;
    Ok(dir)
}

/// Creates and locks the run folder like [`run_dir`] but writes nothing into it yet, so that a
/// command can check what the folder already holds before it changes anything.
pub fn open_run_dir(cfg: &RunConfig, command: &str) -> Result<RunDir> {
    let path = cfg.run.out_dir.clone().unwrap_or_else(|| PathBuf::from("runs").join(command));
    std::fs::create_dir_all(&path).with_context(|| format!("{}: cannot create the run folder", path.display()))?;
    let lock = RunLock::acquire(&path)?;
    Ok(RunDir { path, _lock: lock })
}

impl RunDir {
    /// Writes the effective config into the folder (`config.toml`).
    pub fn write_config(&self, cfg: &RunConfig) -> Result<()> {
        Ok(crate::artifact::write_bytes(&self.path.join("config.toml"), cfg.to_toml().as_bytes())?)
    }
}

/// Writes the dense-id <-> raw-id maps of `ds` into `dir` (`items.json`, `users.json`), so that
/// every output can be reported in the user's own ids.
pub fn write_id_maps(ds: &Dataset, dir: &Path) -> Result<()> {
    ds.items.save(&dir.join("items.json"))?;
    ds.users.save(&dir.join("users.json"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_config_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                RunConfig::load(Some(&path), &[]).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert!(n >= 4, "expected the shipped configs in {}", dir.display());
    }

    #[test]
    fn home_is_expanded() {
        if let Some(home) = std::env::var_os("HOME") {
            assert_eq!(expand_home("~/x/y"), PathBuf::from(home).join("x/y"));
        }
        assert_eq!(expand_home("a/~/b"), PathBuf::from("a/~/b"));
    }
}
