//! The `sidrec` command line: one subcommand per pipeline stage. Every run reads a TOML config
//! (`--config`, default: built-in defaults) with `--set section.key=value` overrides, and writes
//! the effective config next to its outputs.

pub mod alloc;
pub mod config;
pub mod data_cmd;
pub mod device;
pub mod embed_cmd;
pub mod eval_cmd;
pub mod export_cmd;
pub mod flexcode_cmd;
pub mod lock;
pub mod quickstart;
pub mod recommend_cmd;
pub mod run;
pub mod sasrec_cmd;
pub mod study_cmd;
pub mod tokenize_cmd;
pub mod train_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use config::RunConfig;
use device::DeviceChoice;

/// Generative recommendation with semantic IDs (TIGER, DiscRec) on any GPU, and SASRec.
#[derive(Debug, Parser)]
#[command(name = "sidrec", version, about)]
pub struct Cli {
    /// The stage to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every stage takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// TOML run configuration (see configs/); built-in defaults when left out.
    #[arg(long, short, global = true)]
    pub config: Option<PathBuf>,
    /// Override one config value, e.g. --set data.k_core=10 (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE", global = true)]
    pub overrides: Vec<String>,
    /// Device: auto (a physical GPU through Vulkan/Metal/DX12, else cpu; the default), wgpu (any
    /// wgpu adapter), wgpu-cpu (the software Vulkan adapter) or cpu (Burn's CPU backend).
    /// Overrides run.device.
    #[arg(long, global = true)]
    pub device: Option<DeviceChoice>,
    /// Output folder. Overrides run.out_dir.
    #[arg(long, global = true)]
    pub out: Option<PathBuf>,
}

impl Common {
    /// The effective config: file, then `--set`, then the dedicated flags, then `dataset` (a
    /// positional argument of some commands).
    pub fn config(&self, dataset: Option<&str>) -> Result<RunConfig> {
        self.config_with_base(dataset, None)
    }

    /// [`Common::config`], starting from `base` (TOML text named by its first element) instead
    /// of the built-in defaults when no `--config` is given.
    pub fn config_with_base(&self, dataset: Option<&str>, base: Option<(&str, &str)>) -> Result<RunConfig> {
        let mut overrides = self.overrides.clone();
        if let Some(d) = self.device {
            overrides.push(format!("run.device=\"{d}\""));
        }
        if let Some(o) = &self.out {
            overrides.push(format!("run.out_dir={}", toml::Value::String(o.display().to_string())));
        }
        if let Some(d) = dataset {
            overrides.push(format!("data.dataset={}", toml::Value::String(d.to_string())));
        }
        match (&self.config, base) {
            (None, Some((name, text))) => Ok(RunConfig::load_str(text, name, &overrides)?),
            (path, _) => Ok(RunConfig::load(path.as_deref(), &overrides)?),
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train and evaluate on the embedded synthetic dataset (no download). Without --config it
    /// uses configs/quickstart.toml, built into the binary.
    Quickstart {
        /// Also train DiscRec on the same semantic IDs and budget, and compare the two (about
        /// twice the time).
        #[arg(long)]
        discrec: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Dataset tools.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Recall@K / NDCG@K with head/tail split of a trained model (--checkpoint: a generator or
    /// SASRec) and of the baselines (most-popular, random), on validation and test.
    Eval {
        /// Dataset: `synthetic`, a dataset folder or an interaction file (default: data.dataset).
        dataset: Option<String>,
        /// A checkpoint folder written by `sidrec train` (e.g. runs/train/checkpoints/best).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Write a TIGER or DiscRec checkpoint as a Hugging Face T5 folder (config.json,
    /// model.safetensors) that transformers' T5ForConditionalGeneration loads, with the token
    /// layout (sidrec_vocab.json) and, for DiscRec, its input blocks (discrec_input.safetensors).
    Export {
        /// A checkpoint folder written by `sidrec train` (e.g. runs/train/checkpoints/best), or
        /// its run folder (then checkpoints/best).
        #[arg(long)]
        checkpoint: PathBuf,
        /// The folder to write; must not exist or be empty.
        #[arg(long)]
        to: PathBuf,
    },
    /// Print the adapters found (with the indices --devices takes), the chosen device, its
    /// limits and float types.
    Info {
        #[command(flatten)]
        common: Common,
    },
    /// Item embeddings from item text with the built-in sentence encoder (all-MiniLM-L6-v2).
    Embed {
        /// Dataset: `synthetic`, a dataset folder or an interaction file (default: data.dataset).
        dataset: Option<String>,
        /// Model folder (config.json, tokenizer.json, model.safetensors). Overrides embed.model_dir.
        #[arg(long)]
        model: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Semantic IDs: train the tokenizer (RQ-VAE or residual k-means, see [tokenizer] in the
    /// config) on item embeddings, or import an index file, and write collision-free IDs.
    Tokenize {
        /// Dataset: `synthetic`, a dataset folder or an interaction file (default: data.dataset).
        dataset: Option<String>,
        /// Item embeddings (.npy or .safetensors, one row per item). Overrides tokenizer.embeddings.
        #[arg(long)]
        embeddings: Option<PathBuf>,
        /// Import this LC-Rec/LETTER index file and fix its collisions instead of training.
        /// Overrides tokenizer.import.
        #[arg(long = "import")]
        import: Option<PathBuf>,
        /// FlexCode's collaborative item embeddings (.npy, .safetensors, or a SASRec run folder).
        /// Overrides tokenizer.flexcode.cf_embeddings.
        #[arg(long = "cf-embeddings")]
        cf_embeddings: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// FlexCode against TIGER's semantic IDs, CF-only IDs and a fixed split (and the ablations),
    /// from the same data, split and seeds: tokenizes, trains model.kind and evaluates each, then
    /// writes one table (overall, head and tail Recall/NDCG@5/10) to <out>/study.md.
    FlexcodeStudy {
        /// Dataset: `synthetic`, a dataset folder or an interaction file (default: data.dataset).
        dataset: Option<String>,
        /// Comma-separated variants: tiger, semantic-only, cf-only, fixed-split, flexcode,
        /// no-align, no-smooth, no-balance.
        #[arg(long, value_delimiter = ',', default_value = "tiger,cf-only,fixed-split,flexcode")]
        variants: Vec<String>,
        /// Comma-separated seeds (default: run.seed).
        #[arg(long, value_delimiter = ',')]
        seeds: Vec<u64>,
        /// Comma-separated token budgets L (default: tokenizer.levels).
        #[arg(long, value_delimiter = ',')]
        levels: Vec<usize>,
        #[command(flatten)]
        common: Common,
    },
    /// Train a model (TIGER, DiscRec or SASRec: model.kind, see [model] and [train]) to early
    /// stopping, with checkpoints; an interrupted run resumes when started again. Evaluates the
    /// best epoch; SASRec also exports its item embeddings (item_embeddings.npy).
    Train {
        /// Dataset: `synthetic`, a dataset folder or an interaction file (default: data.dataset).
        dataset: Option<String>,
        /// Semantic IDs (an index file from `sidrec tokenize`, or LC-Rec/LETTER's). Overrides
        /// model.index; without either, the items are tokenized first with [tokenizer].
        #[arg(long)]
        index: Option<PathBuf>,
        /// Start over even if the output folder holds a checkpoint (it is deleted).
        #[arg(long)]
        restart: bool,
        /// Data-parallel replicas in this process: a count (`2`: adapter indices 0 and 1, as
        /// `sidrec info` lists them) or a list of indices (`0,2`; one index alone: `1,`).
        /// train.batch_size stays the global batch, split evenly. Under mpirun each rank takes
        /// its local rank's share.
        #[arg(long, value_name = "N|I,J,..")]
        devices: Option<device::DeviceSpec>,
        #[command(flatten)]
        common: Common,
    },
    /// Top-K items for histories, with a trained generator or SASRec, as JSON (the dataset's own
    /// ids).
    Recommend {
        /// A checkpoint folder written by `sidrec train` (e.g. runs/train/checkpoints/best).
        #[arg(long)]
        checkpoint: PathBuf,
        /// One history: item ids, oldest first.
        #[arg(long, num_args = 1.., value_name = "ID")]
        history: Vec<String>,
        /// A file of histories, one per line, oldest first (ids separated by tabs, or by spaces or
        /// commas when the line has no tab).
        #[arg(long, value_name = "FILE")]
        histories: Option<PathBuf>,
        /// How many items to return per history.
        #[arg(long, default_value_t = 10)]
        top_k: usize,
        #[command(flatten)]
        common: Common,
    },
}

/// `sidrec data ...`
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Print users, items, interactions, sequence-length quantiles and split sizes.
    Stats {
        /// Dataset: `synthetic`, a dataset folder or an interaction file (default: data.dataset).
        dataset: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Write the embedded synthetic dataset to disk (LC-Rec layout plus item features).
    Generate {
        #[command(flatten)]
        common: Common,
    },
}

/// Runs one parsed command.
pub fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Quickstart { discrec, common } => {
            let mut cfg = common.config_with_base(None, Some(("configs/quickstart.toml (built in)", quickstart::CONFIG)))?;
            if cfg.run.out_dir.is_none() {
                cfg.run.out_dir = Some(PathBuf::from("runs/quickstart"));
            }
            quickstart::run(&cfg, discrec)
        }
        Command::Data { command: DataCommand::Stats { dataset, json, common } } => {
            data_cmd::stats(&common.config(dataset.as_deref())?, json)
        }
        Command::Data { command: DataCommand::Generate { common } } => {
            let cfg = common.config(None)?;
            let out = cfg.run.out_dir.clone().unwrap_or_else(|| PathBuf::from("runs/synthetic-data"));
            data_cmd::generate(&cfg, &out)
        }
        Command::Eval { dataset, checkpoint, common } => {
            eval_cmd::run(&common.config(dataset.as_deref())?, checkpoint.as_deref())
        }
        Command::Export { checkpoint, to } => export_cmd::run(&checkpoint, &to),
        Command::Info { common } => {
            let cfg = common.config(None)?;
            println!("{}", device::info_report(cfg.run.device)?);
            Ok(())
        }
        Command::Embed { dataset, model, common } => {
            let mut cfg = common.config(dataset.as_deref())?;
            if model.is_some() {
                cfg.embed.model_dir = model;
            }
            embed_cmd::run(&cfg)
        }
        Command::Tokenize { dataset, embeddings, import, cf_embeddings, common } => {
            let mut cfg = common.config(dataset.as_deref())?;
            if cf_embeddings.is_some() {
                cfg.tokenizer.flexcode.cf_embeddings = cf_embeddings;
            }
            if embeddings.is_some() {
                cfg.tokenizer.embeddings = embeddings;
            }
            if import.is_some() {
                cfg.tokenizer.import = import;
            }
            tokenize_cmd::run(&cfg)
        }
        Command::FlexcodeStudy { dataset, variants, seeds, levels, common } => {
            let cfg = common.config(dataset.as_deref())?;
            let variants = variants.iter().map(|v| study_cmd::Variant::parse(v)).collect::<Result<Vec<_>>>()?;
            let seeds = if seeds.is_empty() { vec![cfg.run.seed] } else { seeds };
            let levels = if levels.is_empty() { vec![cfg.tokenizer.levels] } else { levels };
            study_cmd::run(&cfg, &variants, &seeds, &levels).map(|_| ())
        }
        Command::Train { dataset, index, restart, devices, common } => {
            let mut cfg = common.config(dataset.as_deref())?;
            if index.is_some() {
                cfg.model.index = index;
            }
            train_cmd::run_spread(&cfg, restart, devices.as_ref()).map(|_| ())
        }
        Command::Recommend { checkpoint, history, histories, top_k, common } => {
            let cfg = common.config(None)?;
            recommend_cmd::run(&cfg, &checkpoint, &history, histories.as_deref(), top_k)
        }
    }
}

/// The binary's entry point: parses arguments, runs, and turns every error into a message on
/// stderr and a non-zero exit code.
/// Output into a pipe whose reader has gone (`sidrec recommend ... | head`) ends the process
/// quietly, as it does for other command-line tools, instead of a panic in `println!`: Rust
/// ignores SIGPIPE, so the write fails and `println!` panics. Checkpoints and outputs are written
/// atomically, so nothing is left half-written.
fn quit_quietly_on_a_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to the default before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

pub fn main() -> ExitCode {
    quit_quietly_on_a_closed_pipe();
    alloc::keep_large_blocks();
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
