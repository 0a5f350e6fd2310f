//! The baselines every model is compared with: most-popular and random.
//!
//! Both rank the full catalogue without excluding the history, like the generative models
//! (which may recommend an item seen before).

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::evaluate::Ranker;
use crate::data::Popularity;

/// Recommends the items with the most training interactions, the same list for everyone.
#[derive(Debug, Clone)]
pub struct MostPopular {
    ranking: Vec<u32>,
}

impl MostPopular {
    /// Ranks by the training counts of `pop` (ties: smaller id first).
    pub fn new(pop: &Popularity) -> Self {
        Self { ranking: pop.ranking.clone() }
    }
}

impl Ranker for MostPopular {
    fn name(&self) -> String {
        "most-popular".into()
    }

    fn top_k(&mut self, histories: &[&[u32]], k: usize) -> Vec<Vec<u32>> {
        let top = &self.ranking[..k.min(self.ranking.len())];
        histories.iter().map(|_| top.to_vec()).collect()
    }
}

/// Recommends `k` distinct items drawn uniformly at random (seeded, so runs repeat).
#[derive(Debug)]
pub struct RandomRanker {
    num_items: usize,
    rng: StdRng,
}

impl RandomRanker {
    /// A random ranker over `num_items` items.
    pub fn new(num_items: usize, seed: u64) -> Self {
        Self { num_items, rng: StdRng::seed_from_u64(seed) }
    }
}

impl Ranker for RandomRanker {
    fn name(&self) -> String {
        "random".into()
    }

    fn top_k(&mut self, histories: &[&[u32]], k: usize) -> Vec<Vec<u32>> {
        let k = k.min(self.num_items);
        histories
            .iter()
            .map(|_| {
                // Floyd's algorithm: k distinct items in O(k), then a shuffle for the order.
                let mut picked: Vec<u32> = Vec::with_capacity(k);
                for j in self.num_items - k..self.num_items {
                    let t = self.rng.random_range(0..=j) as u32;
                    picked.push(if picked.contains(&t) { j as u32 } else { t });
                }
                for i in (1..picked.len()).rev() {
                    picked.swap(i, self.rng.random_range(0..=i));
                }
                picked
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Dataset, DatasetOptions, Part, Split, SyntheticConfig};
    use crate::eval::evaluate::evaluate;

    #[test]
    fn random_lists_are_distinct_and_uniform() {
        let mut r = RandomRanker::new(20, 1);
        let h: Vec<&[u32]> = vec![&[]; 4000];
        let lists = r.top_k(&h, 5);
        let mut counts = [0usize; 20];
        for l in &lists {
            let mut s = l.clone();
            s.sort();
            s.dedup();
            assert_eq!(s.len(), 5);
            l.iter().for_each(|&i| counts[i as usize] += 1);
        }
        // Each item expected 1000 times; allow generous sampling noise.
        assert!(counts.iter().all(|&c| (850..1150).contains(&c)), "{counts:?}");
        // Every position is uniform too (the shuffle), e.g. item 19 is not always last.
        assert!(lists.iter().filter(|l| l[4] == 19).count() < 400);
    }

    #[test]
    fn popularity_beats_random_and_matches_expectation() {
        let syn = SyntheticConfig { users: 400, items: 200, topics: 8, ..Default::default() }.generate();
        let ds = Dataset::from_log(syn.log, &DatasetOptions::default()).unwrap();
        let split = Split::leave_one_out(&ds, 20);
        let pop = Popularity::from_training(&ds, 0.2);
        let ks = [5, 10];
        let popular = evaluate(&mut MostPopular::new(&pop), &ds, &split, Part::Test, &pop, &ks, 64);
        let random = evaluate(&mut RandomRanker::new(ds.num_items(), 3), &ds, &split, Part::Test, &pop, &ks, 64);
        let r10 = |r: &crate::eval::EvalResult| r.metrics.all.get("recall@10").unwrap();
        assert!(r10(&popular) > r10(&random), "{} vs {}", r10(&popular), r10(&random));
        // Random Recall@10 is about 10 / items.
        let expected = 10.0 / ds.num_items() as f64;
        assert!((r10(&random) - expected).abs() < 0.04, "{} vs {expected}", r10(&random));
        // Most-popular never hits a tail item in its top 10 when the head has >= 10 items.
        assert!(pop.num_head() >= 10);
        assert_eq!(popular.metrics.tail.get("recall@10"), Some(0.0));
        assert_eq!(popular.metrics.all.count, ds.num_users());
    }
}
