//! `sidrec embed`: item embeddings from item text with the built-in sentence encoder.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use super::config::RunConfig;
use super::run::{expand_home, prepare, run_dir, write_id_maps};
use crate::embed::{embed_items, SentenceEncoder};

/// What `embeddings.json` records next to the matrix.
#[derive(Debug, serde::Serialize)]
struct EmbeddingInfo<'a> {
    model: &'a str,
    model_dir: PathBuf,
    dim: usize,
    items: usize,
    fields: &'a [String],
    max_len: usize,
    missing_text_items: usize,
    missing_text_fallback: &'static str,
    device: String,
    seconds: f64,
    items_per_second: f64,
}

/// Runs `sidrec embed`.
pub fn run(cfg: &RunConfig) -> Result<()> {
    let model_dir = cfg
        .embed
        .model_dir
        .as_ref()
        .map(|p| expand_home(&p.to_string_lossy()))
        .context("no model folder given: pass --model DIR or set embed.model_dir (all-MiniLM-L6-v2; `bash .ci/fetch-data minilm` fetches it)")?;
    let device = cfg.run.device.init()?;
    let p = prepare(cfg)?;
    let pad = match cfg.embed.pad_multiple {
        0 => if crate::kernels::Capabilities::of(&device).fixed_shapes { 16 } else { 1 },
        n => n,
    };
    let encoder = SentenceEncoder::load(&model_dir, cfg.embed.max_len, &device)?.with_pad_multiple(pad);
    let dir = run_dir(cfg, "embed")?;

    let bar = ProgressBar::new(p.ds.num_items() as u64).with_style(
        ProgressStyle::with_template("embedding {bar:40} {pos}/{len} items, {per_sec}, eta {eta}")
            .expect("valid template"),
    );
    let started = Instant::now();
    let out = embed_items(&p.ds, &encoder, &cfg.embed.fields, cfg.embed.batch_size, |done| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();

    if let Some(&first) = out.missing_text.first() {
        eprintln!(
            "warning: {} of {} items have no text in the selected fields (first: item {:?}); they get the \
             normalised mean embedding of the items with text",
            out.missing_text.len(),
            p.ds.num_items(),
            p.ds.items.raw(first)
        );
    }
    out.embeddings.save_npy(&dir.join("embeddings.npy"))?;
    out.embeddings.save_safetensors(&dir.join("embeddings.safetensors"), "embeddings")?;
    write_id_maps(&p.ds, &dir)?;
    let info = EmbeddingInfo {
        model: &encoder.name,
        model_dir: model_dir.clone(),
        dim: encoder.dim,
        items: p.ds.num_items(),
        fields: &cfg.embed.fields,
        max_len: cfg.embed.max_len,
        missing_text_items: out.missing_text.len(),
        missing_text_fallback: "normalised mean of the embeddings of the items with text",
        device: cfg.run.device.to_string(),
        seconds,
        items_per_second: (p.ds.num_items() - out.missing_text.len()) as f64 / seconds,
    };
    crate::artifact::write_json(&dir.join("embeddings.json"), &info)?;
    println!(
        "embedded {} items ({} dims) in {:.1}s ({:.0} items/s) -> {}",
        info.items,
        info.dim,
        seconds,
        info.items_per_second,
        dir.join("embeddings.npy").display()
    );
    Ok(())
}
