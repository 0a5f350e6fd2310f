//! The embedded default dataset: a deterministic synthetic catalogue generated in-process.
//!
//! Items belong to latent topics and, inside a topic, to an ordered series (think episodes or a
//! product line). Users walk the catalogue: most steps take the next item of the current series,
//! some jump to one of the topic's successor topics, some pick a popular item of the same topic.
//! Item text (title, category, description) and item feature vectors are both correlated with
//! the topic and the position in the series, so semantic IDs built from either carry the signal.
//! A model that reads the history does far better than popularity or random guessing.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::dataset::Dataset;
use super::embeddings::Embeddings;
use super::log::InteractionLog;
use crate::seed::standard_normal;

/// Sizes and probabilities of the synthetic dataset.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticConfig {
    /// Number of users.
    pub users: usize,
    /// Number of items.
    pub items: usize,
    /// Number of latent topics (items are spread evenly over them).
    pub topics: usize,
    /// Shortest user sequence.
    pub min_len: usize,
    /// Longest user sequence.
    pub max_len: usize,
    /// Probability that the next item is the next of the current series.
    pub p_series: f64,
    /// Probability of jumping to a successor topic (the rest: a popular item of the topic).
    pub p_jump: f64,
    /// Width of the item feature vectors.
    pub feature_dim: usize,
    /// Noise added to the feature vectors (standard deviation per coordinate).
    pub feature_noise: f64,
    /// Random seed: the same seed gives the same dataset, byte for byte.
    pub seed: u64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            users: 2000,
            items: 1200,
            topics: 24,
            min_len: 6,
            max_len: 30,
            p_series: 0.6,
            p_jump: 0.2,
            feature_dim: 64,
            feature_noise: 0.15,
            seed: 7,
        }
    }
}

/// A generated dataset: the interaction log (with item text) and item feature vectors.
#[derive(Debug, Clone)]
pub struct Synthetic {
    /// Interactions and item text; raw ids are `"0".."items-1"` and `"u0"..`.
    pub log: InteractionLog,
    /// `[items, feature_dim]` feature vectors, row = raw item id.
    pub features: Embeddings,
    /// Topic of each raw item id.
    pub topics: Vec<u32>,
}

const CATEGORIES: &[&str] = &[
    "skincare", "haircare", "fragrance", "makeup", "nails", "bath", "sci-fi", "drama", "comedy",
    "thriller", "documentary", "animation", "running", "cycling", "hiking", "yoga", "coffee", "tea",
    "baking", "grilling", "jazz", "rock", "classical", "hip-hop", "poetry", "history", "travel",
    "gardening", "chess", "puzzles", "photography", "astronomy",
];
const ADJECTIVES: &[&str] = &[
    "classic", "deluxe", "gentle", "bold", "mini", "organic", "vintage", "modern", "light", "dark",
    "rich", "fresh", "smooth", "wild", "quiet", "bright",
];
const NOUNS: &[&str] = &["set", "edition", "collection", "volume", "kit", "series", "pack", "guide"];

/// Samples an index from unnormalised cumulative weights.
fn sample_cumulative(rng: &mut StdRng, cumulative: &[f64]) -> usize {
    let x = rng.random::<f64>() * cumulative.last().copied().unwrap_or(0.0);
    cumulative.partition_point(|&c| c <= x).min(cumulative.len() - 1)
}

impl SyntheticConfig {
    /// Checks the sizes, with a message naming the bad key.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [("users", self.users), ("items", self.items), ("topics", self.topics), ("feature_dim", self.feature_dim)];
        for (k, v) in positive {
            if v == 0 {
                return Err(format!("synthetic.{k} must be positive"));
            }
        }
        if self.topics > self.items {
            return Err(format!("synthetic.topics ({}) exceeds synthetic.items ({})", self.topics, self.items));
        }
        if self.min_len < 3 || self.min_len > self.max_len {
            return Err(format!(
                "synthetic.min_len ({}) must be at least 3 and at most synthetic.max_len ({})",
                self.min_len, self.max_len
            ));
        }
        for (k, p) in [("p_series", self.p_series), ("p_jump", self.p_jump)] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("synthetic.{k} must lie in [0, 1], got {p}"));
            }
        }
        if self.p_series + self.p_jump > 1.0 {
            return Err("synthetic.p_series + synthetic.p_jump must not exceed 1".into());
        }
        if !(self.feature_noise >= 0.0 && self.feature_noise.is_finite()) {
            return Err("synthetic.feature_noise must be a finite non-negative number".into());
        }
        Ok(())
    }

    /// Generates the dataset. Panics if [`SyntheticConfig::validate`] fails.
    pub fn generate(&self) -> Synthetic {
        if let Err(e) = self.validate() {
            panic!("invalid synthetic config: {e}");
        }
        let mut rng = StdRng::seed_from_u64(self.seed);
        let (n_items, n_topics) = (self.items, self.topics);
        // Item i belongs to topic i % topics, at position i / topics of that topic's series.
        let topic_of = |i: usize| i % n_topics;
        let series_len = |t: usize| (n_items - t).div_ceil(n_topics);
        let item_at = |t: usize, r: usize| r * n_topics + t;
        // Two successor topics per topic.
        let successors: Vec<[usize; 2]> =
            (0..n_topics).map(|_| [rng.random_range(0..n_topics), rng.random_range(0..n_topics)]).collect();
        // Zipf-like popularity inside each topic, on a shuffled order so that popularity is not
        // the same as the series position.
        let zipf: Vec<Vec<f64>> = (0..n_topics)
            .map(|t| {
                let n = series_len(t);
                let mut ranks: Vec<usize> = (0..n).collect();
                for k in (1..n).rev() {
                    ranks.swap(k, rng.random_range(0..=k));
                }
                let mut acc = 0.0;
                ranks.iter().map(|&r| { acc += 1.0 / (r as f64 + 1.0).powf(0.9); acc }).collect()
            })
            .collect();

        let mut log = InteractionLog::new("synthetic");
        let topic_weights: Vec<f64> = {
            let mut acc = 0.0;
            (0..n_topics).map(|t| { acc += 1.0 / (t as f64 + 2.0).sqrt(); acc }).collect()
        };
        for u in 0..self.users {
            let user = format!("u{u}");
            let len = rng.random_range(self.min_len..=self.max_len);
            let mut t = sample_cumulative(&mut rng, &topic_weights);
            let mut r = sample_cumulative(&mut rng, &zipf[t]);
            let start: f64 = rng.random_range(0..1_000_000) as f64;
            for step in 0..len {
                log.push(&user, &item_at(t, r).to_string(), start + step as f64, None);
                let x: f64 = rng.random();
                if x < self.p_series {
                    r = (r + 1) % series_len(t);
                } else if x < self.p_series + self.p_jump {
                    t = successors[t][rng.random_range(0..2)];
                    r = sample_cumulative(&mut rng, &zipf[t]);
                } else {
                    r = sample_cumulative(&mut rng, &zipf[t]);
                }
            }
        }

        // Text: the topic's category and words picked per topic and per series position.
        for i in 0..n_items {
            let (t, r) = (topic_of(i), i / n_topics);
            let category = CATEGORIES[t % CATEGORIES.len()];
            let adjective = ADJECTIVES[(t * 5 + r / 4) % ADJECTIVES.len()];
            let noun = NOUNS[(t + r / 8) % NOUNS.len()];
            let text = vec![
                ("title".to_string(), format!("{adjective} {category} {noun} no. {}", r + 1)),
                ("category".to_string(), category.to_string()),
                (
                    "description".to_string(),
                    format!("part {} of the {adjective} {category} line; a {noun} for {category} fans", r + 1),
                ),
            ];
            log.item_text.insert(i.to_string(), text);
        }

        // Features: topic centroid + a smooth code of the series position + noise.
        let d = self.feature_dim;
        let centroids: Vec<Vec<f64>> = (0..n_topics).map(|_| (0..d).map(|_| standard_normal(&mut rng)).collect()).collect();
        let freqs: Vec<(f64, f64)> =
            (0..d).map(|_| (rng.random::<f64>() * 0.3, rng.random::<f64>() * std::f64::consts::TAU)).collect();
        let scale = 1.0 / (d as f64).sqrt();
        let mut data = Vec::with_capacity(n_items * d);
        for i in 0..n_items {
            let (t, r) = (topic_of(i), (i / n_topics) as f64);
            for (k, &(f, phase)) in freqs.iter().enumerate() {
                let v = centroids[t][k] + 0.5 * (f * r + phase).sin() + self.feature_noise * standard_normal(&mut rng);
                data.push((v * scale) as f32);
            }
        }
        Synthetic {
            log,
            features: Embeddings::new(n_items, d, data),
            topics: (0..n_items).map(|i| topic_of(i) as u32).collect(),
        }
    }
}

impl Synthetic {
    /// The feature rows of the items `ds` kept, in its dense item order.
    pub fn features_for(&self, ds: &Dataset) -> Embeddings {
        let d = self.features.dim;
        let mut data = Vec::with_capacity(ds.num_items() * d);
        for raw in ds.items.raw_ids() {
            let i: usize = raw.parse().expect("synthetic item ids are integers");
            data.extend_from_slice(self.features.row(i));
        }
        Embeddings::new(ds.num_items(), d, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DatasetOptions;

    fn small() -> SyntheticConfig {
        SyntheticConfig { users: 300, items: 120, topics: 6, ..Default::default() }
    }

    #[test]
    fn is_deterministic() {
        let a = small().generate();
        let b = small().generate();
        assert_eq!(a.log.records, b.log.records);
        assert_eq!(a.features, b.features);
        let c = SyntheticConfig { seed: 8, ..small() }.generate();
        assert_ne!(a.log.records, c.log.records);
    }

    #[test]
    fn sequences_follow_series_and_features_cluster_by_topic() {
        let syn = small().generate();
        let ds = Dataset::from_log(syn.log.clone(), &DatasetOptions::default()).unwrap();
        // Most transitions stay inside the topic.
        let (mut same, mut total) = (0, 0);
        for s in &ds.sequences {
            for w in s.windows(2) {
                let t = |i: u32| syn.topics[ds.items.raw(i).parse::<usize>().unwrap()];
                same += (t(w[0]) == t(w[1])) as usize;
                total += 1;
            }
        }
        assert!(same as f64 / total as f64 > 0.7, "{same}/{total}");
        // Same-topic features are closer than cross-topic ones on average.
        let f = &syn.features;
        let dist = |a: usize, b: usize| -> f32 { f.row(a).iter().zip(f.row(b)).map(|(x, y)| (x - y).powi(2)).sum() };
        let (within, across) = (dist(0, 6), dist(0, 1)); // items 0 and 6 share topic 0
        assert!(within < across, "within {within} across {across}");
        assert_eq!(syn.features_for(&ds).rows, ds.num_items());
        assert!(syn.log.item_text["0"][1].1 == "skincare");
    }

    #[test]
    fn validation_names_the_key() {
        let bad = SyntheticConfig { min_len: 2, ..Default::default() };
        assert!(bad.validate().unwrap_err().contains("synthetic.min_len"));
        let bad = SyntheticConfig { topics: 0, ..Default::default() };
        assert!(bad.validate().unwrap_err().contains("synthetic.topics"));
    }
}
