//! `sidrec quickstart`: the main job on the embedded synthetic dataset, no download needed.
//!
//! It checks the chosen device, runs every stage that exists so far (synthetic data, split,
//! baselines, metrics) and says plainly which stages are not built yet.

use anyhow::Result;

use super::config::RunConfig;
use super::eval_cmd::{baseline_results, table};
use super::run::{prepare, run_dir, write_id_maps};
use crate::data::DatasetStats;

/// Stages of the pipeline that are still to come, printed so nobody mistakes the baselines for
/// the model.
const NOT_BUILT: &[&str] = &[
    "semantic IDs inside the quickstart (run `sidrec tokenize synthetic` on its own)",
    "training of the T5 (TIGER) / DiscRec generator (the backbone and beam search exist as a library)",
];

/// Runs the quickstart.
pub fn run(cfg: &RunConfig) -> Result<()> {
    let started = std::time::Instant::now();
    let (device, summary) = cfg.run.device.init_with_summary()?;
    match summary {
        Some(s) => println!("device: {} ({:?}, {:?})", s.info.name, s.info.backend, s.info.device_type),
        None => println!("device: {device:?}"),
    }
    let p = prepare(cfg)?;
    let dir = run_dir(cfg, "quickstart")?;
    write_id_maps(&p.ds, &dir)?;
    println!("{}\n", DatasetStats::compute(&p.ds, &p.split, &p.pop));
    let results = baseline_results(&p, cfg);
    print!("{}", table(&results, &cfg.eval.ks));
    crate::artifact::write_json(&dir.join("metrics.json"), &results)?;
    println!("\nwrote {} in {:.1}s", dir.join("metrics.json").display(), started.elapsed().as_secs_f64());
    println!("not built yet, so not run: {}", NOT_BUILT.join("; "));
    Ok(())
}
