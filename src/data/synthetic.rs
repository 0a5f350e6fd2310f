//! The embedded default dataset: a deterministic synthetic catalogue generated in-process.
//!
//! Items belong to latent topics and, inside a topic, to an ordered series (think episodes or a
//! product line). Users walk the catalogue: most steps take the next item of the current series,
//! some jump to one of the topic's successor topics, some pick a popular item of the same topic.
//! Item text (title, category, description) and item feature vectors are both correlated with
//! the topic and the position in the series, so semantic IDs built from either carry the signal.
//! A model that reads the history does far better than popularity or random guessing.
//!
//! Optionally (`cf_pairs`, `p_cf`) popular items come in pairs across topics, and a user who
//! consumed one item of a pair takes its partner next with probability `p_cf`: a
//! collaborative structure that neither text nor features reveal, so that for popular items
//! the next item is predictable from co-occurrence (CF) alone, while tail items still follow
//! the topic and series structure that the text describes.

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
    /// Number of cross-topic item pairs whose items follow each other (0: none, the default,
    /// which leaves the dataset exactly as without the option).
    pub cf_pairs: usize,
    /// The pairs are drawn among the most popular items by the generator's popularity: this
    /// fraction of the catalogue, in (0, 1].
    pub cf_pair_pool: f64,
    /// Probability that a user who consumed one item of a pair takes its partner next.
    pub p_cf: f64,
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
            cf_pairs: 0,
            cf_pair_pool: 0.2,
            p_cf: 0.0,
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
    /// The cross-topic partner of each raw item id (`None` for items in no pair; all `None`
    /// unless `cf_pairs > 0`).
    pub cf_partner: Vec<Option<u32>>,
}

/// The latent structure of the catalogue, drawn first from the generator.
struct Catalogue {
    /// Two successor topics per topic.
    successors: Vec<[usize; 2]>,
    /// Per topic, cumulative Zipf-like popularity weights over the series positions.
    zipf: Vec<Vec<f64>>,
    /// Cumulative topic weights (where a user starts).
    topic_weights: Vec<f64>,
}

/// Seeds, mixed with `seed`, of the generators for the CF pairs and the walks' CF steps (kept
/// apart from the main generator so that `cf_pairs = 0` draws exactly what it always did).
const CF_PAIR_SEED: u64 = 0x5EED_C0DE_0000_0001;
const CF_WALK_SEED: u64 = 0x5EED_C0DE_0000_0002;

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
        self.validate_cf()
    }

    /// Checks the CF-pair settings, drawing the pairs to make sure there are enough.
    fn validate_cf(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.p_cf) {
            return Err(format!("synthetic.p_cf must lie in [0, 1], got {}", self.p_cf));
        }
        if !(self.cf_pair_pool > 0.0 && self.cf_pair_pool <= 1.0) {
            return Err(format!("synthetic.cf_pair_pool must lie in (0, 1], got {}", self.cf_pair_pool));
        }
        if self.cf_pairs == 0 {
            return Ok(());
        }
        if self.topics < 2 {
            return Err("synthetic.cf_pairs needs at least 2 synthetic.topics (pairs cross topics)".into());
        }
        let pool = self.cf_pool_size();
        let found = self.cf_partners(&self.catalogue(&mut StdRng::seed_from_u64(self.seed))).iter().flatten().count() / 2;
        if found < self.cf_pairs {
            return Err(format!(
                "synthetic.cf_pairs ({}) is more than the {found} cross-topic pairs found among the {pool} most \
                 popular items (synthetic.cf_pair_pool = {}); lower cf_pairs or raise cf_pair_pool",
                self.cf_pairs, self.cf_pair_pool
            ));
        }
        Ok(())
    }

    /// Number of items among which the CF pairs are drawn.
    fn cf_pool_size(&self) -> usize {
        ((self.cf_pair_pool * self.items as f64).ceil() as usize).clamp(1, self.items)
    }

    /// Draws the catalogue's structure from `rng` (the first draws of every dataset).
    fn catalogue(&self, rng: &mut StdRng) -> Catalogue {
        let n_topics = self.topics;
        // Two successor topics per topic.
        let successors: Vec<[usize; 2]> =
            (0..n_topics).map(|_| [rng.random_range(0..n_topics), rng.random_range(0..n_topics)]).collect();
        // Zipf-like popularity inside each topic, on a shuffled order so that popularity is not
        // the same as the series position.
        let zipf: Vec<Vec<f64>> = (0..n_topics)
            .map(|t| {
                let n = self.series_len(t);
                let mut ranks: Vec<usize> = (0..n).collect();
                for k in (1..n).rev() {
                    ranks.swap(k, rng.random_range(0..=k));
                }
                let mut acc = 0.0;
                ranks.iter().map(|&r| { acc += 1.0 / (r as f64 + 1.0).powf(0.9); acc }).collect()
            })
            .collect();
        let topic_weights: Vec<f64> = {
            let mut acc = 0.0;
            (0..n_topics).map(|t| { acc += 1.0 / (t as f64 + 2.0).sqrt(); acc }).collect()
        };
        Catalogue { successors, zipf, topic_weights }
    }

    /// Length of topic `t`'s series (item `i` is in topic `i % topics`, at position
    /// `i / topics` of its series).
    fn series_len(&self, t: usize) -> usize {
        (self.items - t).div_ceil(self.topics)
    }

    /// The generator's popularity of each raw item: the probability of its topic times its
    /// Zipf weight inside the topic (how walks start and pick popular items).
    fn generator_popularity(&self, cat: &Catalogue) -> Vec<f64> {
        let weight = |cum: &[f64], k: usize| cum[k] - if k == 0 { 0.0 } else { cum[k - 1] };
        let topic_total = cat.topic_weights.last().copied().unwrap_or(1.0);
        (0..self.items)
            .map(|i| {
                let (t, r) = (i % self.topics, i / self.topics);
                let z = &cat.zipf[t];
                weight(&cat.topic_weights, t) / topic_total * weight(z, r) / z.last().copied().unwrap_or(1.0)
            })
            .collect()
    }

    /// Draws up to `cf_pairs` pairs of items in different topics among the `cf_pool_size` most
    /// popular: the pool in a random order, each item paired with the next unpaired item of
    /// another topic. Returns each raw item's partner.
    fn cf_partners(&self, cat: &Catalogue) -> Vec<Option<u32>> {
        let mut partner = vec![None; self.items];
        if self.cf_pairs == 0 {
            return partner;
        }
        let popularity = self.generator_popularity(cat);
        let mut pool: Vec<usize> = (0..self.items).collect();
        pool.sort_by(|&a, &b| popularity[b].total_cmp(&popularity[a]).then(a.cmp(&b)));
        pool.truncate(self.cf_pool_size());
        let mut rng = StdRng::seed_from_u64(self.seed ^ CF_PAIR_SEED);
        for k in (1..pool.len()).rev() {
            pool.swap(k, rng.random_range(0..=k));
        }
        let mut pairs = 0;
        for (k, &a) in pool.iter().enumerate() {
            if pairs == self.cf_pairs {
                break;
            }
            if partner[a].is_some() {
                continue;
            }
            let other = pool[k + 1..].iter().find(|&&b| partner[b].is_none() && b % self.topics != a % self.topics);
            if let Some(&b) = other {
                partner[a] = Some(b as u32);
                partner[b] = Some(a as u32);
                pairs += 1;
            }
        }
        partner
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
        let series_len = |t: usize| self.series_len(t);
        let item_at = |t: usize, r: usize| r * n_topics + t;
        let catalogue = self.catalogue(&mut rng);
        let cf_partner = self.cf_partners(&catalogue);
        let Catalogue { successors, zipf, topic_weights } = catalogue;
        let mut cf_rng = StdRng::seed_from_u64(self.seed ^ CF_WALK_SEED);

        let mut log = InteractionLog::new("synthetic");
        log.has_timestamps = true; // each user's steps are consecutive times
        for u in 0..self.users {
            let user = format!("u{u}");
            let len = rng.random_range(self.min_len..=self.max_len);
            let mut t = sample_cumulative(&mut rng, &topic_weights);
            let mut r = sample_cumulative(&mut rng, &zipf[t]);
            let start: f64 = rng.random_range(0..1_000_000) as f64;
            for step in 0..len {
                let item = item_at(t, r);
                log.push(&user, &item.to_string(), start + step as f64, None);
                // The CF step draws from its own generator, and only at paired items.
                if let Some(p) = cf_partner[item] {
                    if cf_rng.random::<f64>() < self.p_cf {
                        (t, r) = (topic_of(p as usize), p as usize / n_topics);
                        continue;
                    }
                }
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
            cf_partner,
        }
    }
}

impl Synthetic {
    /// The CF partner of each item `ds` kept, both in its dense ids (`None` for items in no
    /// pair, or whose partner `ds` dropped).
    pub fn cf_partner_for(&self, ds: &Dataset) -> Vec<Option<u32>> {
        ds.items
            .raw_ids()
            .iter()
            .map(|raw| {
                let i: usize = raw.parse().expect("synthetic item ids are integers");
                self.cf_partner[i].and_then(|p| ds.items.dense(&p.to_string()))
            })
            .collect()
    }

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

    /// FNV-1a hashes of the records (raw user, raw item, time), the features and the item
    /// text, and the record count.
    fn fingerprint(syn: &Synthetic) -> (usize, u64, u64, u64) {
        fn fnv(h: &mut u64, bytes: &[u8]) {
            for &b in bytes {
                *h ^= b as u64;
                *h = h.wrapping_mul(0x100000001b3);
            }
        }
        let log = &syn.log;
        let (mut hr, mut hf, mut ht) = (0xcbf29ce484222325u64, 0xcbf29ce484222325u64, 0xcbf29ce484222325u64);
        for r in &log.records {
            for part in [log.users.name(r.user).as_bytes(), &[0], log.items.name(r.item).as_bytes(), &[0]] {
                fnv(&mut hr, part);
            }
            fnv(&mut hr, &r.time.to_bits().to_le_bytes());
        }
        for v in &syn.features.data {
            fnv(&mut hf, &v.to_bits().to_le_bytes());
        }
        for i in 0..syn.topics.len() {
            for (k, v) in &log.item_text[&i.to_string()] {
                for part in [k.as_bytes(), &[0], v.as_bytes(), &[0]] {
                    fnv(&mut ht, part);
                }
            }
        }
        (log.records.len(), hr, hf, ht)
    }

    /// The raw item ids of user `u`'s records, in file order.
    fn raw_sequence(syn: &Synthetic, u: usize) -> Vec<&str> {
        let user = syn.log.users.get(&format!("u{u}")).unwrap();
        syn.log.records.iter().filter(|r| r.user == user).map(|r| syn.log.items.name(r.item)).collect()
    }

    #[test]
    fn defaults_give_the_same_dataset_as_before_cf_pairs() {
        // Recorded from the generator before the CF options existed.
        let syn = SyntheticConfig::default().generate();
        assert_eq!(fingerprint(&syn), (36233, 0xb3aba78134850420, 0x2d8203acd47b0c6e, 0x3e21c3d8f22e8abf));
        assert!(syn.cf_partner.iter().all(Option::is_none));
        assert!(syn.log.has_timestamps);
        // The quickstart's sizes.
        let quick = SyntheticConfig { users: 1500, items: 800, ..Default::default() };
        let syn = quick.generate();
        assert_eq!(fingerprint(&syn), (27263, 0xa4207cc45a007566, 0xc4cb3de8beb5325b, 0xb0512e8a2b3f20bf));
        assert_eq!(raw_sequence(&syn, 0), ["624", "648", "672", "696", "720", "744", "768", "792", "0", "24", "48", "96", "120", "144", "168", "192"]);
        assert_eq!(raw_sequence(&syn, 1), ["583", "439", "463", "487", "438", "462", "566", "590", "614", "278", "302", "326", "15", "39"]);
        assert_eq!(
            raw_sequence(&syn, 2),
            ["408", "432", "456", "480", "504", "168", "576", "600", "624", "648", "408", "432", "456", "792", "0", "504", "456", "480", "504"]
        );
        // Pairs with p_cf = 0 change nothing but cf_partner.
        let paired = SyntheticConfig { cf_pairs: 40, ..quick }.generate();
        assert_eq!(fingerprint(&paired), fingerprint(&syn));
        assert_eq!(paired.cf_partner.iter().flatten().count(), 80);
    }

    /// The `[synthetic]` section of configs/synthetic-cf.toml.
    fn cf_config() -> SyntheticConfig {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/synthetic-cf.toml");
        let table: toml::Table = std::fs::read_to_string(path).unwrap().parse().unwrap();
        let cfg: SyntheticConfig = table["synthetic"].clone().try_into().unwrap();
        cfg.validate().unwrap();
        assert!(cfg.cf_pairs > 0 && cfg.p_cf > 0.0);
        cfg
    }

    /// Among transitions from a paired item, the fraction that go to its partner.
    fn partner_follow_rate(syn: &Synthetic) -> f64 {
        let (mut hits, mut total) = (0usize, 0usize);
        let users = syn.log.users.len();
        let mut seqs: Vec<Vec<u32>> = vec![Vec::new(); users];
        for r in &syn.log.records {
            seqs[r.user as usize].push(syn.log.items.name(r.item).parse().unwrap());
        }
        for w in seqs.iter().flat_map(|s| s.windows(2)) {
            if let Some(p) = syn.cf_partner[w[0] as usize] {
                total += 1;
                hits += (w[1] == p) as usize;
            }
        }
        assert!(total > 1000, "too few transitions from paired items: {total}");
        hits as f64 / total as f64
    }

    #[test]
    fn cf_partners_follow_each_other_at_about_p_cf() {
        let cfg = cf_config();
        let syn = cfg.generate();
        let pairs = syn.cf_partner.iter().flatten().count() / 2;
        assert_eq!(pairs, cfg.cf_pairs);
        for (a, p) in syn.cf_partner.iter().enumerate() {
            if let Some(b) = *p {
                assert_eq!(syn.cf_partner[b as usize], Some(a as u32), "pairs are symmetric");
                assert_ne!(syn.topics[a], syn.topics[b as usize], "partners {a} and {b} share a topic");
            }
        }
        let rate = partner_follow_rate(&syn);
        assert!((rate - cfg.p_cf).abs() < 0.06, "partner follows at {rate}, p_cf {}", cfg.p_cf);
        let off = SyntheticConfig { p_cf: 0.0, ..cfg.clone() }.generate();
        assert_eq!(off.cf_partner, syn.cf_partner);
        let base = partner_follow_rate(&off);
        assert!(base < 0.05, "without p_cf partners follow at {base}");
        // Paired items are among the popular ones: they get more interactions than the rest.
        let mut counts = vec![0usize; cfg.items];
        syn.log.records.iter().for_each(|r| counts[syn.log.items.name(r.item).parse::<usize>().unwrap()] += 1);
        let mean = |paired: bool| {
            let c: Vec<usize> = (0..cfg.items).filter(|&i| syn.cf_partner[i].is_some() == paired).map(|i| counts[i]).collect();
            c.iter().sum::<usize>() as f64 / c.len() as f64
        };
        assert!(mean(true) > 2.0 * mean(false), "paired {} unpaired {}", mean(true), mean(false));
        // The dense view keeps the pairs.
        let ds = Dataset::from_log(syn.log.clone(), &DatasetOptions::default()).unwrap();
        let dense = syn.cf_partner_for(&ds);
        assert_eq!(dense.len(), ds.num_items());
        for (d, p) in dense.iter().enumerate() {
            if let Some(p) = p {
                let raw: usize = ds.items.raw(d as u32).parse().unwrap();
                assert_eq!(syn.cf_partner[raw], Some(ds.items.raw(*p).parse().unwrap()));
            }
        }
    }

    /// Word sets of an item's text fields.
    fn words(syn: &Synthetic, i: usize) -> std::collections::HashSet<String> {
        syn.log.item_text[&i.to_string()]
            .iter()
            .flat_map(|(_, v)| v.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_string).collect::<Vec<_>>())
            .collect()
    }

    #[test]
    fn partners_are_not_closer_in_text_or_features_than_other_cross_topic_pairs() {
        let syn = cf_config().generate();
        let f = &syn.features;
        let dist = |a: usize, b: usize| -> f64 { f.row(a).iter().zip(f.row(b)).map(|(x, y)| ((x - y) as f64).powi(2)).sum() };
        let jaccard = |a: usize, b: usize| -> f64 {
            let (wa, wb) = (words(&syn, a), words(&syn, b));
            wa.intersection(&wb).count() as f64 / wa.union(&wb).count() as f64
        };
        let paired: Vec<usize> = (0..syn.topics.len()).filter(|&i| syn.cf_partner[i].is_some()).collect();
        let partner_pairs: Vec<(usize, usize)> =
            paired.iter().map(|&a| (a, syn.cf_partner[a].unwrap() as usize)).filter(|(a, b)| a < b).collect();
        // Every cross-topic pair among the paired items: what pairing them at random would give.
        let mut other_pairs = Vec::new();
        for (k, &a) in paired.iter().enumerate() {
            for &b in &paired[k + 1..] {
                if syn.topics[a] != syn.topics[b] {
                    other_pairs.push((a, b));
                }
            }
        }
        let mean = |pairs: &[(usize, usize)], m: &dyn Fn(usize, usize) -> f64| {
            pairs.iter().map(|&(a, b)| m(a, b)).sum::<f64>() / pairs.len() as f64
        };
        let (pd, od) = (mean(&partner_pairs, &dist), mean(&other_pairs, &dist));
        let (pj, oj) = (mean(&partner_pairs, &jaccard), mean(&other_pairs, &jaccard));
        eprintln!("feature distance: partners {pd:.4} others {od:.4}; text jaccard: partners {pj:.4} others {oj:.4}");
        assert!(pd > 0.85 * od, "partners' features are closer ({pd}) than other cross-topic pairs' ({od})");
        assert!(pj < 1.2 * oj + 0.01, "partners' text overlaps more ({pj}) than other cross-topic pairs' ({oj})");
    }

    #[test]
    fn validation_names_the_key() {
        let bad = SyntheticConfig { min_len: 2, ..Default::default() };
        assert!(bad.validate().unwrap_err().contains("synthetic.min_len"));
        let bad = SyntheticConfig { topics: 0, ..Default::default() };
        assert!(bad.validate().unwrap_err().contains("synthetic.topics"));
        let bad = SyntheticConfig { p_cf: 1.5, ..Default::default() };
        assert!(bad.validate().unwrap_err().contains("synthetic.p_cf"));
        let bad = SyntheticConfig { cf_pair_pool: 0.0, ..Default::default() };
        assert!(bad.validate().unwrap_err().contains("synthetic.cf_pair_pool"));
        let bad = SyntheticConfig { cf_pairs: 121, ..Default::default() }; // the pool holds 240 items
        assert!(bad.validate().unwrap_err().contains("synthetic.cf_pairs (121)"));
        let bad = SyntheticConfig { cf_pairs: 1, topics: 1, ..Default::default() };
        assert!(bad.validate().unwrap_err().contains("synthetic.cf_pairs"));
    }
}
