//! `sidrec quickstart`: the whole pipeline on the embedded synthetic dataset, no download:
//! semantic IDs from the items' features (RQ-VAE), the generator trained for a fixed, small
//! number of epochs (`train.epochs` of `configs/quickstart.toml`; the best epoch by validation
//! loss is kept), and its test metrics beside the most-popular and random baselines.
//!
//! With `--discrec` it then trains DiscRec on the same semantic IDs, split and budget (in
//! `<out>/discrec`) and prints the two generators' test metrics side by side.
//!
//! It always starts over in its output folder (default `runs/quickstart`); `sidrec train` is
//! the command that resumes.

use anyhow::Result;

use super::config::RunConfig;
use super::run::prepare;
use crate::data::DatasetStats;
use crate::eval::EvalResult;
use crate::model::GeneratorKind;

/// The quickstart's settings when no `--config` is given: `configs/quickstart.toml`, built in.
pub const CONFIG: &str = include_str!("../../configs/quickstart.toml");

/// Runs the quickstart (and DiscRec beside TIGER with `discrec`).
pub fn run(cfg: &RunConfig, discrec: bool) -> Result<()> {
    let started = std::time::Instant::now();
    let (_, summary) = cfg.run.device.init_with_summary()?;
    let on = match summary {
        Some(s) => format!("{} ({:?}, {:?})", s.info.name, s.info.backend, s.info.device_type),
        None => "Burn's CPU backend".to_string(),
    };
    println!("device: {on}");
    let p = prepare(cfg)?;
    println!("{}\n", DatasetStats::compute(&p.ds, &p.split, &p.pop));
    let dir = super::train_cmd::run(cfg, true)?;
    if discrec && cfg.model.kind != GeneratorKind::Discrec {
        let mut d = cfg.clone();
        d.model.kind = GeneratorKind::Discrec;
        d.model.index = Some(dir.join("checkpoints/best/items.index.json"));
        d.run.out_dir = Some(dir.join("discrec"));
        println!("\nDiscRec on the same semantic IDs, split and budget:");
        let ddir = super::train_cmd::run(&d, true)?;
        println!("\n{}", side_by_side(&[dir.join("metrics.json"), ddir.join("metrics.json")])?);
    }
    println!("quickstart done in {:.1} s on {on} (--device {})", started.elapsed().as_secs_f64(), cfg.run.device);
    Ok(())
}

/// The test rows of the generators in `files` (`metrics.json`), then the baselines once.
fn side_by_side(files: &[std::path::PathBuf]) -> Result<String> {
    let mut rows: Vec<EvalResult> = Vec::new();
    for f in files {
        let results: Vec<EvalResult> = serde_json::from_slice(&std::fs::read(f)?)?;
        for r in results.into_iter().filter(|r| r.part == "test") {
            if !rows.iter().any(|s| s.model == r.model) {
                rows.push(r);
            }
        }
    }
    // The generators first, then the baselines.
    rows.sort_by_key(|r| r.model.starts_with("most-popular") || r.model.starts_with("random"));
    let mut out = format!("{:<18} {:>8} {:>8} {:>11} {:>11}\n", "test", "R@10", "N@10", "head R@10", "tail R@10");
    for r in rows {
        let m = &r.metrics;
        let get = |b: &crate::eval::metrics::MetricSummary, k: &str| b.get(k).unwrap_or(f64::NAN);
        out += &format!(
            "{:<18} {:>8.4} {:>8.4} {:>11.4} {:>11.4}\n",
            r.model,
            get(&m.all, "recall@10"),
            get(&m.all, "ndcg@10"),
            get(&m.head, "recall@10"),
            get(&m.tail, "recall@10")
        );
    }
    Ok(out.trim_end().to_string())
}
