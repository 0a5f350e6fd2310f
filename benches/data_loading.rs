//! Loading + splitting MovieLens-1M (1M interactions): parse the RecBole files, sort, 5-core
//! filter, remap, leave-one-out split and popularity buckets. Target: under 2 s on a 2-core
//! machine. Needs the fetched data (`bash .ci/fetch-data ml-1m`); skips with a message otherwise.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use sidrec::data::{formats, Dataset, DatasetOptions, Format, Popularity, Split};

fn ml1m() -> Option<PathBuf> {
    let base = std::env::var_os("SIDREC_DATA_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/sidrec/data")))?;
    let dir = base.join("ml-1m");
    dir.is_dir().then_some(dir)
}

fn load_and_split(c: &mut Criterion) {
    let Some(dir) = ml1m() else {
        eprintln!("skipped: ml-1m not found; run `bash .ci/fetch-data ml-1m` (or set SIDREC_DATA_DIR)");
        return;
    };
    let mut group = c.benchmark_group("data");
    group.sample_size(10);
    group.bench_function("ml-1m load + 5-core + split", |b| {
        b.iter(|| {
            let log = formats::load(&dir, Format::Auto).expect("ml-1m loads");
            let ds = Dataset::from_log(log, &DatasetOptions::default()).expect("ml-1m filters");
            let split = Split::leave_one_out(&ds, 20);
            let pop = Popularity::from_training(&ds, 0.2);
            (split.train.len(), pop.num_head())
        })
    });
    group.finish();
}

criterion_group!(benches, load_and_split);
criterion_main!(benches);
