//! Evaluation: Recall@K / NDCG@K over the full catalogue, the head/tail breakdown, the shared
//! evaluation loop, on-device ranking for scoring models, and the baselines.

pub mod baselines;
pub mod evaluate;
pub mod metrics;
pub mod ranking;

pub use baselines::{MostPopular, RandomRanker};
pub use evaluate::{evaluate, EvalResult, Ranker};
pub use metrics::{BucketedMetrics, BucketedSummary, MetricAccumulator, MetricSummary};
