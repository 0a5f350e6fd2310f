//! Evaluation: Recall@K / NDCG@K over the full catalogue, the head/tail breakdown, the shared
//! evaluation loop, on-device ranking for scoring models (SASRec), the baselines, and trained
//! generators ranked by constrained beam search.

pub mod baselines;
pub mod config;
pub mod evaluate;
pub mod generative;
pub mod metrics;
pub mod ranking;
pub mod scoring;

pub use baselines::{MostPopular, RandomRanker};
pub use config::EvalConfig;
pub use evaluate::{evaluate, evaluate_with, EvalResult, Ranker};
pub use scoring::{evaluate_scores, SasRecScorer};
pub use generative::GenerativeRanker;
pub use metrics::{BucketedMetrics, BucketedSummary, MetricAccumulator, MetricSummary};
