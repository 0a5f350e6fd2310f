//! `sidrec quickstart`: the whole pipeline on the embedded synthetic dataset, no download:
//! semantic IDs from the items' features (RQ-VAE), the generator trained for a fixed, small
//! number of epochs (`train.epochs` of `configs/quickstart.toml`; the best epoch by validation
//! loss is kept), and its test metrics beside the most-popular and random baselines.
//!
//! It always starts over in its output folder (default `runs/quickstart`); `sidrec train` is
//! the command that resumes.

use anyhow::Result;

use super::config::RunConfig;
use super::run::prepare;
use crate::data::DatasetStats;

/// The quickstart's settings when no `--config` is given: `configs/quickstart.toml`, built in.
pub const CONFIG: &str = include_str!("../../configs/quickstart.toml");

/// Runs the quickstart.
pub fn run(cfg: &RunConfig) -> Result<()> {
    let started = std::time::Instant::now();
    let (_, summary) = cfg.run.device.init_with_summary()?;
    let on = match summary {
        Some(s) => format!("{} ({:?}, {:?})", s.info.name, s.info.backend, s.info.device_type),
        None => "Burn's CPU backend".to_string(),
    };
    println!("device: {on}");
    let p = prepare(cfg)?;
    println!("{}\n", DatasetStats::compute(&p.ds, &p.split, &p.pop));
    super::train_cmd::run(cfg, true)?;
    println!("quickstart done in {:.1} s on {on} (--device {})", started.elapsed().as_secs_f64(), cfg.run.device);
    Ok(())
}
