//! `sidrec flexcode-study`: FlexCode against its baselines and ablations from the same data,
//! split and seeds, in one table.
//!
//! For every seed it trains SASRec once on the training split (the CF embeddings every variant
//! shares; or takes `tokenizer.flexcode.cf_embeddings`), then for every token budget L and
//! variant it tokenizes, trains the configured generator (`model.kind`) and evaluates it, each
//! in its own run folder `<out>/seed-<s>/L<L>/<variant>/`. Every variant gets the same
//! `[train]` budget. A folder that already holds a finished run is resumed (so a study that was
//! interrupted continues, and finished runs are only evaluated again).
//!
//! With `tokenizer.flexcode.semantic_index` (a fixed semantic index, e.g. LETTER's on Amazon
//! Beauty) every FlexCode variant takes its semantic codes from that index, and TIGER is the
//! generator on the index's first L tokens (written to `<out>/seed-<s>/L<L>/semantic.index.json`;
//! colliding items get a disambiguation token when the generator reads it), so that the
//! comparison is like for like: no semantic RQ-VAE is trained by any variant.
//!
//! Writes `<out>/study.json` (one row a run, and the mean and standard deviation over seeds)
//! and `<out>/study.md` (the table, printed at the end).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::config::RunConfig;
use super::run::{prepare, run_dir, Prepared};
use crate::tokenizer::TokenizerKind;

/// One column of the comparison: a tokenizer setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// Semantic IDs alone: the plain RQ-VAE tokenizer (TIGER).
    Tiger,
    /// FlexCode with the router off and no CF token (its semantic codebook alone).
    SemanticOnly,
    /// FlexCode with the router off and every token from the CF codebook.
    CfOnly,
    /// FlexCode with the router off and `ceil(L / 2)` CF tokens for every item.
    FixedSplit,
    /// FlexCode as configured (router on).
    Flexcode,
    /// FlexCode without the alignment loss.
    NoAlign,
    /// FlexCode without the smoothness loss.
    NoSmooth,
    /// FlexCode without the load balance.
    NoBalance,
}

impl Variant {
    /// Every variant, in table order.
    pub const ALL: [Variant; 8] = [
        Variant::Tiger,
        Variant::SemanticOnly,
        Variant::CfOnly,
        Variant::FixedSplit,
        Variant::Flexcode,
        Variant::NoAlign,
        Variant::NoSmooth,
        Variant::NoBalance,
    ];

    /// The default comparison of the issue: TIGER, CF-only, a fixed split and FlexCode.
    pub const MAIN: [Variant; 4] = [Variant::Tiger, Variant::CfOnly, Variant::FixedSplit, Variant::Flexcode];

    /// The name used on the command line, in folders and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Tiger => "tiger",
            Variant::SemanticOnly => "semantic-only",
            Variant::CfOnly => "cf-only",
            Variant::FixedSplit => "fixed-split",
            Variant::Flexcode => "flexcode",
            Variant::NoAlign => "no-align",
            Variant::NoSmooth => "no-smooth",
            Variant::NoBalance => "no-balance",
        }
    }

    /// The variant called `name`, or an error listing the names.
    pub fn parse(name: &str) -> Result<Variant> {
        let names: Vec<&str> = Variant::ALL.iter().map(|v| v.name()).collect();
        Variant::ALL
            .into_iter()
            .find(|v| v.name() == name)
            .with_context(|| format!("unknown variant {name:?}; the variants are {}", names.join(", ")))
    }

    /// Sets the tokenizer of `cfg` (whose `tokenizer.levels` is the budget) for this variant.
    pub fn apply(self, cfg: &mut RunConfig) {
        let t = &mut cfg.tokenizer;
        let levels = t.levels;
        t.kind = if self == Variant::Tiger { TokenizerKind::Rqvae } else { TokenizerKind::Flexcode };
        let f = &mut t.flexcode;
        match self {
            Variant::Tiger | Variant::Flexcode => {}
            Variant::SemanticOnly => (f.router, f.fixed_cf_tokens) = (false, 0),
            Variant::CfOnly => (f.router, f.fixed_cf_tokens) = (false, levels),
            Variant::FixedSplit => (f.router, f.fixed_cf_tokens) = (false, levels.div_ceil(2)),
            Variant::NoAlign => f.lambda_align = 0.0,
            Variant::NoSmooth => f.lambda_smooth = 0.0,
            Variant::NoBalance => f.lambda_balance = 0.0,
        }
    }
}

/// The test metrics of one run, and FlexCode's split where it has one.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StudyRow {
    /// The variant.
    pub variant: Variant,
    /// Token budget L (`tokenizer.levels`).
    pub levels: usize,
    /// Run seed.
    pub seed: u64,
    /// `[all, head, tail]` x `[R@5, N@5, R@10, N@10]` on the test split.
    pub test: [[f64; 4]; 3],
    /// Mean CF share of head and tail items (FlexCode variants).
    pub cf_share: Option<[f64; 2]>,
    /// What the run cost and how far its training got.
    pub cost: RunCost,
    /// The run folder.
    pub dir: PathBuf,
}

/// The generator's best validation loss and the time of each stage of one run.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RunCost {
    /// Lowest validation cross-entropy per label token over the epochs (`metrics.jsonl`).
    pub best_valid_loss: Option<f64>,
    /// Epoch of that loss (1-based).
    pub best_epoch: Option<usize>,
    /// Mean wall time of a generator epoch, its validation loss included.
    pub epoch_seconds: Option<f64>,
    /// Wall time of the tokenizer (training and ID assignment; not the shared SASRec).
    pub tokenizer_seconds: Option<f64>,
}

impl RunCost {
    /// Reads the cost of the run in `dir`; what a file lacks stays `None`.
    fn read(dir: &Path) -> RunCost {
        let mut cost = RunCost::default();
        if let Ok(text) = std::fs::read_to_string(dir.join("metrics.jsonl")) {
            let epochs: Vec<serde_json::Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
            let secs: Vec<f64> = epochs.iter().filter_map(|e| e["seconds"].as_f64()).collect();
            if !secs.is_empty() {
                cost.epoch_seconds = Some(secs.iter().sum::<f64>() / secs.len() as f64);
            }
            let best = epochs
                .iter()
                .filter_map(|e| Some((e["valid_loss"].as_f64()?, e["epoch"].as_u64()? as usize)))
                .min_by(|a, b| a.0.total_cmp(&b.0));
            (cost.best_valid_loss, cost.best_epoch) = (best.map(|b| b.0), best.map(|b| b.1));
        }
        let tok: Option<serde_json::Value> =
            std::fs::read(dir.join("tokenizer/metrics.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
        cost.tokenizer_seconds = tok.and_then(|t| t["seconds"].as_f64());
        cost
    }
}

const METRICS: [&str; 4] = ["recall@5", "ndcg@5", "recall@10", "ndcg@10"];
const GROUPS: [&str; 3] = ["all", "head", "tail"];

/// Reads the generator's test metrics from a run's `metrics.json` (the first test entry; the
/// baselines follow it).
fn read_row(dir: &Path, variant: Variant, levels: usize, seed: u64) -> Result<StudyRow> {
    let path = dir.join("metrics.json");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).with_context(|| format!("{}: cannot read", path.display()))?)
            .with_context(|| format!("{}: not JSON", path.display()))?;
    let test = v
        .as_array()
        .and_then(|a| a.iter().find(|r| r["part"] == "test"))
        .with_context(|| format!("{}: no test results", path.display()))?;
    let mut out = [[0.0; 4]; 3];
    for (g, group) in GROUPS.iter().enumerate() {
        for (m, metric) in METRICS.iter().enumerate() {
            out[g][m] = test[group][metric].as_f64().with_context(|| format!("{}: no {group} {metric}", path.display()))?;
        }
    }
    let tok: Option<serde_json::Value> =
        std::fs::read(dir.join("tokenizer/metrics.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let cf_share = tok.and_then(|t| Some([t["head"]["mean_cf_share"].as_f64()?, t["tail"]["mean_cf_share"].as_f64()?]));
    Ok(StudyRow { variant, levels, seed, test: out, cf_share, cost: RunCost::read(dir), dir: dir.to_path_buf() })
}

/// Mean and (population) standard deviation.
fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    (mean, (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt())
}

/// The study table: one line per (L, variant), means over seeds (with the standard deviation
/// of R@10 and N@10 when there are several seeds).
pub fn table(rows: &[StudyRow]) -> String {
    let mut out = String::new();
    let seeds: std::collections::BTreeSet<u64> = rows.iter().map(|r| r.seed).collect();
    let _ = writeln!(
        out,
        "| L | variant | R@5 | N@5 | R@10 | N@10 | head R@10 | head N@10 | tail R@10 | tail N@10 | CF share head / tail |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|");
    let mut keys: Vec<(usize, usize)> = Vec::new();
    for r in rows {
        let k = (r.levels, Variant::ALL.iter().position(|v| *v == r.variant).unwrap_or(0));
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.sort();
    for (levels, vi) in keys {
        let group: Vec<&StudyRow> = rows.iter().filter(|r| r.levels == levels && r.variant == Variant::ALL[vi]).collect();
        let cell = |g: usize, m: usize| {
            let (mean, std) = mean_std(&group.iter().map(|r| r.test[g][m]).collect::<Vec<_>>());
            if group.len() > 1 && m >= 2 { format!("{mean:.4} ± {std:.4}") } else { format!("{mean:.4}") }
        };
        let shares: Vec<[f64; 2]> = group.iter().filter_map(|r| r.cf_share).collect();
        let share = if shares.is_empty() {
            "-".to_string()
        } else {
            let n = shares.len() as f64;
            format!("{:.2} / {:.2}", shares.iter().map(|s| s[0]).sum::<f64>() / n, shares.iter().map(|s| s[1]).sum::<f64>() / n)
        };
        let _ = writeln!(
            out,
            "| {levels} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {share} |",
            Variant::ALL[vi].name(),
            cell(0, 0),
            cell(0, 1),
            cell(0, 2),
            cell(0, 3),
            cell(1, 2),
            cell(1, 3),
            cell(2, 2),
            cell(2, 3)
        );
    }
    let _ = writeln!(out, "\nTest split; means over seeds {:?} (± population std over seeds).", seeds);
    out.push('\n');
    out.push_str(&cost_table(rows));
    out
}

/// The (L, variant) groups of `rows` in table order.
fn groups(rows: &[StudyRow]) -> Vec<Vec<&StudyRow>> {
    let order = |r: &StudyRow| (r.levels, Variant::ALL.iter().position(|v| *v == r.variant).unwrap_or(0));
    let mut keys: Vec<(usize, usize)> = rows.iter().map(order).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().map(|k| rows.iter().filter(|r| order(r) == k).collect()).collect()
}

/// Validation losses and times, one line per (L, variant), means over seeds.
pub fn cost_table(rows: &[StudyRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| L | variant | best valid loss (epoch) | generator epoch s | tokenizer s |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for group in groups(rows) {
        let mean = |f: &dyn Fn(&RunCost) -> Option<f64>| {
            let v: Vec<f64> = group.iter().filter_map(|r| f(&r.cost)).collect();
            (!v.is_empty()).then(|| mean_std(&v).0)
        };
        let show = |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
        let epochs: Vec<String> = group.iter().filter_map(|r| r.cost.best_epoch).map(|e| e.to_string()).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} ({}) | {} | {} |",
            group[0].levels,
            group[0].variant.name(),
            show(mean(&|c| c.best_valid_loss), 4),
            if epochs.is_empty() { "-".to_string() } else { epochs.join(", ") },
            show(mean(&|c| c.epoch_seconds), 1),
            show(mean(&|c| c.tokenizer_seconds), 1),
        );
    }
    let _ = writeln!(out, "\nMeans over seeds; the epochs of the best validation loss are listed per seed.");
    out
}

/// TIGER's IDs with a fixed semantic index: its first `levels` tokens of every item, written to
/// `<dir>/semantic.index.json` (the path is returned). The generator's index reader adds the
/// disambiguation token where prefixes collide.
fn fixed_tiger_index(cfg: &RunConfig, p: &Prepared, levels: usize, dir: &Path) -> Result<Option<PathBuf>> {
    let mut c = cfg.clone();
    c.tokenizer.levels = levels;
    let Some((codes, _)) = super::flexcode_cmd::fixed_semantic_codes(&c, p)? else { return Ok(None) };
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let path = dir.join("semantic.index.json");
    crate::data::SemanticIndex::from_codes(&codes).write(&path, &p.ds.items)?;
    Ok(Some(path))
}

/// Runs the study (see the module docs); returns its folder.
pub fn run(cfg: &RunConfig, variants: &[Variant], seeds: &[u64], budgets: &[usize]) -> Result<PathBuf> {
    if variants.is_empty() || seeds.is_empty() || budgets.is_empty() {
        bail!("flexcode-study needs at least one variant, seed and token budget");
    }
    if !cfg.model.kind.is_generator() {
        bail!("flexcode-study trains a generator: set model.kind to tiger or discrec, not {}", cfg.model.kind);
    }
    if let Some(&l) = budgets.iter().find(|&&l| l == 0 || l > 26) {
        bail!("token budget {l}: --levels takes budgets from 1 to 26");
    }
    let root = run_dir(cfg, "flexcode-study")?;
    let device = cfg.run.device.init()?;
    let mut rows = Vec::new();
    for &seed in seeds {
        let seed_dir = root.join(format!("seed-{seed}"));
        std::fs::create_dir_all(&seed_dir).with_context(|| format!("{}: cannot create", seed_dir.display()))?;
        let mut base = cfg.clone();
        base.run.seed = seed;
        base.tokenizer.seed = None;
        base.model.index = None;
        let needs_cf = variants.iter().any(|v| *v != Variant::Tiger);
        let fixed = base.tokenizer.flexcode.semantic_index.is_some();
        let p = if (needs_cf && base.tokenizer.flexcode.cf_embeddings.is_none()) || fixed { Some(prepare(&base)?) } else { None };
        if needs_cf && base.tokenizer.flexcode.cf_embeddings.is_none() {
            let p = p.as_ref().expect("prepared above");
            let (_, source) = super::flexcode_cmd::cf_embeddings(&base, p, &seed_dir, &device)?;
            base.tokenizer.flexcode.cf_embeddings = Some(PathBuf::from(source));
        }
        for &levels in budgets {
            // Checked before any variant trains: an index shorter than L stops the study here.
            let tiger_index = match &p {
                Some(p) if fixed => fixed_tiger_index(&base, p, levels, &seed_dir.join(format!("L{levels}")))?,
                _ => None,
            };
            for &variant in variants {
                let dir = seed_dir.join(format!("L{levels}")).join(variant.name());
                let mut c = base.clone();
                c.tokenizer.levels = levels;
                variant.apply(&mut c);
                if variant == Variant::Tiger {
                    c.model.index = tiger_index.clone();
                }
                c.run.out_dir = Some(dir.clone());
                eprintln!("== flexcode-study: seed {seed}, L = {levels}, {} ({})", variant.name(), dir.display());
                super::train_cmd::run(&c, false)?;
                rows.push(read_row(&dir, variant, levels, seed)?);
            }
        }
    }
    let text = table(&rows);
    crate::artifact::write_json(&root.join("study.json"), &rows)?;
    let semantic = match &cfg.tokenizer.flexcode.semantic_index {
        Some(path) => format!("; semantic side: the fixed index {} (TIGER: its first L tokens)", path.display()),
        None => String::new(),
    };
    let header = format!(
        "# FlexCode study: {} on {}, {} epochs a run, device {}{semantic}\n\n",
        cfg.model.kind, cfg.data.dataset, cfg.train.epochs, cfg.run.device
    );
    crate::artifact::write_bytes(&root.join("study.md"), format!("{header}{text}").as_bytes())?;
    print!("{text}");
    println!("wrote {} and {}", root.join("study.md").display(), root.join("study.json").display());
    Ok(root.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_parse_and_set_the_tokenizer() {
        assert_eq!(Variant::parse("cf-only").unwrap(), Variant::CfOnly);
        assert!(Variant::parse("cf").unwrap_err().to_string().contains("the variants are tiger, semantic-only"));
        let mut c = RunConfig::default();
        c.tokenizer.levels = 3;
        Variant::FixedSplit.apply(&mut c);
        assert_eq!((c.tokenizer.kind, c.tokenizer.flexcode.router, c.tokenizer.flexcode.fixed_cf_tokens), (TokenizerKind::Flexcode, false, 2));
        Variant::Tiger.apply(&mut c);
        assert_eq!(c.tokenizer.kind, TokenizerKind::Rqvae);
        let mut c = RunConfig::default();
        Variant::NoAlign.apply(&mut c);
        assert!(c.tokenizer.flexcode.router && c.tokenizer.flexcode.lambda_align == 0.0);
    }

    #[test]
    fn the_table_averages_over_seeds() {
        let row = |variant, seed, r10: f64| StudyRow {
            variant,
            levels: 3,
            seed,
            test: [[0.1, 0.05, r10, 0.1], [0.2, 0.1, 0.4, 0.2], [0.0, 0.0, 0.1, 0.05]],
            cf_share: (variant != Variant::Tiger).then_some([0.8, 0.4]),
            cost: RunCost {
                best_valid_loss: Some(2.0 + seed as f64),
                best_epoch: Some(seed as usize),
                epoch_seconds: Some(10.0),
                tokenizer_seconds: (variant != Variant::Tiger).then_some(4.0),
            },
            dir: PathBuf::new(),
        };
        let t = table(&[row(Variant::Flexcode, 1, 0.3), row(Variant::Tiger, 1, 0.2), row(Variant::Flexcode, 2, 0.5)]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[2].starts_with("| 3 | tiger | 0.1000 | 0.0500 | 0.2000 | 0.1000 |"), "{t}");
        assert!(lines[3].starts_with("| 3 | flexcode | 0.1000 | 0.0500 | 0.4000 ± 0.1000"), "{t}");
        assert!(lines[3].ends_with("| 0.80 / 0.40 |"), "{t}");
        let cost = t.lines().skip_while(|l| !l.starts_with("| L | variant | best valid loss")).collect::<Vec<_>>();
        assert_eq!(cost[2], "| 3 | tiger | 3.0000 (1) | 10.0 | - |", "{t}");
        assert_eq!(cost[3], "| 3 | flexcode | 3.5000 (1, 2) | 10.0 | 4.0 |", "{t}");
    }
}
