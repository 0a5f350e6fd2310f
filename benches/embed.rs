//! Sentence-encoder throughput (items/s): all MovieLens-1M titles (3,706 rated movies) and a
//! synthetic set of 10,000 texts of 64 word pieces, on each requested device.
//!
//! ```sh
//! bash .ci/fetch-data minilm ml-1m
//! cargo bench --bench embed -- --device cpu --device wgpu-cpu [--set ml1m|synthetic] \
//!     [--batch 64] [--max-len 256] [--synthetic-count 10000] [--dump-texts DIR]
//! ```
//! `--dump-texts DIR` writes the exact texts (one per line) so that
//! `tests/fixtures/minilm_bench.py` can time the Python reference on the same inputs.
//! A plain timed binary, not criterion: one pass over 10,000 texts takes minutes on two cores.

mod common;

use std::path::PathBuf;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sidrec::data::{formats, Dataset, DatasetOptions, Format};
use sidrec::embed::SentenceEncoder;

/// Words that are one WordPiece each in the uncased BERT vocabulary.
const WORDS: &[&str] = &[
    "the", "of", "and", "to", "in", "is", "was", "for", "on", "with", "as", "by", "at", "from", "his",
    "her", "they", "this", "that", "music", "film", "book", "water", "light", "color", "small",
    "large", "night", "day", "city", "house", "story", "game", "world", "life", "time", "year",
    "people", "way", "man", "woman", "child", "school", "family", "friend", "love", "war", "river",
    "mountain", "road",
];

fn cache() -> PathBuf {
    std::env::var_os("SIDREC_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/sidrec"))
}

fn ml1m_titles() -> Option<Vec<String>> {
    let dir = std::env::var_os("SIDREC_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| cache().join("data")).join("ml-1m");
    let log = formats::load(&dir, Format::Recbole).ok()?;
    let ds = Dataset::from_log(log, &DatasetOptions { k_core: 0, min_rating: None }).ok()?;
    Some(
        ds.item_text
            .iter()
            .map(|t| t.iter().find(|(k, _)| k == "movie_title").map(|(_, v)| v.clone()).unwrap_or_default())
            .collect(),
    )
}

/// `count` texts of 62 words (64 word pieces with [CLS] and [SEP]), seeded.
fn synthetic_texts(count: usize) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(11);
    (0..count)
        .map(|_| (0..62).map(|_| WORDS[rng.random_range(0..WORDS.len())]).collect::<Vec<_>>().join(" "))
        .collect()
}

fn main() {
    let args = common::Args::from_env();
    let (batch, max_len, count) = (args.num("--batch", 64), args.num("--max-len", 256), args.num("--synthetic-count", 10_000));
    let devices = args.devices(&["cpu", "wgpu-cpu"]);
    let mut sets = args.values("--set");
    if sets.is_empty() {
        sets = vec!["ml1m".into(), "synthetic".into()];
    }
    let model = std::env::var_os("SIDREC_MODEL_DIR").map(PathBuf::from).unwrap_or_else(|| cache().join("models/all-MiniLM-L6-v2"));
    if !model.join("model.safetensors").is_file() {
        eprintln!("skipped: all-MiniLM-L6-v2 not found in {}; run `bash .ci/fetch-data minilm`", model.display());
        return;
    }
    let mut inputs: Vec<(String, Vec<String>)> = Vec::new();
    for set in &sets {
        match set.as_str() {
            "ml1m" => match ml1m_titles() {
                Some(t) => inputs.push(("ml-1m titles".into(), t)),
                None => eprintln!("skipped ml-1m: run `bash .ci/fetch-data ml-1m`"),
            },
            "synthetic" => inputs.push((format!("synthetic {count} x 64 tokens"), synthetic_texts(count))),
            other => panic!("unknown --set {other} (ml1m, synthetic)"),
        }
    }
    if let Some(dir) = args.value("--dump-texts") {
        std::fs::create_dir_all(&dir).expect("dump folder");
        for (name, texts) in &inputs {
            let file = PathBuf::from(&dir).join(format!("{}.txt", name.split_whitespace().next().unwrap_or("texts")));
            std::fs::write(&file, texts.join("\n")).expect("write texts");
            eprintln!("wrote {} texts to {}", texts.len(), file.display());
        }
    }
    for dev in &devices {
        let Some((_, device)) = common::init_device(dev) else { continue };
        // As `sidrec embed` pads: buckets of 16 tokens where shapes compile kernels.
        let pad = if sidrec::kernels::Capabilities::of(&device).fixed_shapes { 16 } else { 1 };
        let enc = SentenceEncoder::load(&model, max_len, &device).expect("model loads").with_pad_multiple(pad);
        for (name, texts) in &inputs {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let tokens: usize = enc.tokenize(&refs).expect("tokenize").iter().map(Vec::len).sum();
            // Warm-up: compiles the kernels for the shapes of one batch.
            enc.embed(&refs[..batch.min(refs.len())], batch, |_| {}).expect("warm-up");
            let start = Instant::now();
            enc.embed(&refs, batch, |_| {}).expect("embed");
            let s = start.elapsed().as_secs_f64();
            println!(
                "{{\"device\": \"{dev}\", \"set\": \"{name}\", \"texts\": {}, \"mean_tokens\": {:.1}, \"batch_size\": {batch}, \"max_len\": {max_len}, \"seconds\": {s:.2}, \"items_per_s\": {:.1}}}",
                texts.len(),
                tokens as f64 / texts.len() as f64,
                texts.len() as f64 / s
            );
        }
    }
}
