//! Using sidrec as a library: load a dataset, split it, and evaluate the baselines.
//!
//! ```sh
//! cargo run --release --example baselines                        # the synthetic dataset
//! cargo run --release --example baselines -- ../shared/data/amazon-beauty-2014
//! ```

use std::path::Path;

use sidrec::data::{formats, Dataset, DatasetOptions, Format, Part, Popularity, Split, SyntheticConfig};
use sidrec::eval::{evaluate, MostPopular, RandomRanker};

fn main() -> anyhow::Result<()> {
    let log = match std::env::args().nth(1) {
        Some(path) => formats::load(Path::new(&path), Format::Auto)?,
        None => SyntheticConfig::default().generate().log,
    };
    let ds = Dataset::from_log(log, &DatasetOptions::default())?;
    let split = Split::leave_one_out(&ds, 20);
    let pop = Popularity::from_training(&ds, 0.2);
    println!("{}: {} users, {} items", ds.name, ds.num_users(), ds.num_items());
    for ranker in [&mut MostPopular::new(&pop) as &mut dyn sidrec::eval::Ranker, &mut RandomRanker::new(ds.num_items(), 0)] {
        let r = evaluate(ranker, &ds, &split, Part::Test, &pop, &[5, 10], 512);
        println!("{:<13} {}", r.model, serde_json::to_string(&r.metrics.all)?);
    }
    Ok(())
}
