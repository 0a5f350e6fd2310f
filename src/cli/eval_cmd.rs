//! `sidrec eval`: metrics of the baselines (and, once the generator exists, of a checkpoint)
//! on the validation and test targets, written as JSON.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use super::config::RunConfig;
use super::run::{prepare, run_dir, write_id_maps, Prepared};
use crate::data::Part;
use crate::eval::{evaluate, EvalResult, MostPopular, RandomRanker};

/// Evaluates most-popular and random on validation and test.
pub fn baseline_results(p: &Prepared, cfg: &RunConfig) -> Vec<EvalResult> {
    let mut out = Vec::new();
    for part in [Part::Valid, Part::Test] {
        let ks = &cfg.eval.ks;
        let bs = cfg.eval.batch_size;
        out.push(evaluate(&mut MostPopular::new(&p.pop), &p.ds, &p.split, part, &p.pop, ks, bs));
        let mut random = RandomRanker::new(p.ds.num_items(), cfg.run.seed);
        out.push(evaluate(&mut random, &p.ds, &p.split, part, &p.pop, ks, bs));
    }
    out
}

/// A table of results: one row per model and part, Recall/NDCG at every K, then the head/tail
/// Recall at the largest K.
pub fn table(results: &[EvalResult], ks: &[usize]) -> String {
    let kmax = ks.iter().max().copied().unwrap_or(10);
    let mut s = format!("{:<14} {:<6}", "model", "part");
    for k in ks {
        write!(s, " {:>8} {:>8}", format!("R@{k}"), format!("N@{k}")).ok();
    }
    writeln!(s, " {:>11} {:>11}", format!("head R@{kmax}"), format!("tail R@{kmax}")).ok();
    for r in results {
        write!(s, "{:<14} {:<6}", r.model, r.part).ok();
        let m = &r.metrics;
        for k in ks {
            let g = |name: String| m.all.get(&name).unwrap_or(f64::NAN);
            write!(s, " {:>8.4} {:>8.4}", g(format!("recall@{k}")), g(format!("ndcg@{k}"))).ok();
        }
        let at = format!("recall@{kmax}");
        writeln!(s, " {:>11.4} {:>11.4}", m.head.get(&at).unwrap_or(f64::NAN), m.tail.get(&at).unwrap_or(f64::NAN)).ok();
    }
    s
}

/// Runs `sidrec eval`.
pub fn run(cfg: &RunConfig, checkpoint: Option<&Path>) -> Result<()> {
    if let Some(ckpt) = checkpoint {
        anyhow::bail!(
            "{}: evaluating a trained generator is not built yet (the T5/DiscRec generator is a \
             later stage); run without --checkpoint for the baselines",
            ckpt.display()
        );
    }
    let p = prepare(cfg)?;
    let dir = run_dir(cfg, "eval")?;
    write_id_maps(&p.ds, &dir)?;
    let results = baseline_results(&p, cfg);
    print!("{}", table(&results, &cfg.eval.ks));
    println!(
        "head = top {:.0}% of items by training count ({} items); full-catalogue ranking over {} items",
        cfg.data.head_fraction * 100.0,
        p.pop.num_head(),
        p.ds.num_items()
    );
    crate::artifact::write_json(&dir.join("metrics.json"), &results)?;
    println!("wrote {}", dir.join("metrics.json").display());
    Ok(())
}
