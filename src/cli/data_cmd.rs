//! `sidrec data stats` and `sidrec data generate`.

use std::path::Path;

use anyhow::Result;

use super::config::RunConfig;
use super::run::prepare;
use crate::data::{DataError, DatasetStats, IdMap};

/// Prints the figures of the configured dataset (as text, or as JSON with `json`).
pub fn stats(cfg: &RunConfig, json: bool) -> Result<()> {
    let p = prepare(cfg)?;
    let stats = DatasetStats::compute(&p.ds, &p.split, &p.pop);
    if json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        println!("{stats}");
    }
    Ok(())
}

/// Writes the synthetic dataset to `out` in the LC-Rec layout (`synthetic.inter.json`,
/// `synthetic.item.json`) plus its item features (`synthetic.features.npy`, rows in the
/// dataset's dense item order), so it can be inspected or fed back as a path.
pub fn generate(cfg: &RunConfig, out: &Path) -> Result<()> {
    let syn = cfg.synthetic.generate();
    let ds = crate::data::Dataset::from_log(syn.log.clone(), &cfg.data.options())?;
    let io = |e: crate::artifact::WriteError| DataError::io(e.path, e.source);
    let sequences: serde_json::Map<String, serde_json::Value> = ds
        .sequences
        .iter()
        .enumerate()
        .map(|(u, s)| {
            let items = s.iter().map(|&i| serde_json::Value::from(ds.items.raw(i).parse::<u64>().unwrap_or(0))).collect();
            (ds.users.raw(u as u32).to_string(), serde_json::Value::Array(items))
        })
        .collect();
    crate::artifact::write_json(&out.join("synthetic.inter.json"), &sequences).map_err(io)?;
    let text: serde_json::Map<String, serde_json::Value> = ds
        .items
        .raw_ids()
        .iter()
        .zip(&ds.item_text)
        .map(|(id, fields)| {
            let obj = fields.iter().map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str()))).collect();
            (id.clone(), serde_json::Value::Object(obj))
        })
        .collect();
    crate::artifact::write_json(&out.join("synthetic.item.json"), &text).map_err(io)?;
    syn.features_for(&ds).save_npy(&out.join("synthetic.features.npy"))?;
    IdMap::from_raw(ds.items.raw_ids().to_vec()).save(&out.join("items.json"))?;
    println!(
        "wrote {} users, {} items, {} interactions to {}",
        ds.num_users(),
        ds.num_items(),
        ds.num_interactions(),
        out.display()
    );
    Ok(())
}
