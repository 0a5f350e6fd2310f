//! From a raw log to the dataset every model sees: per-user chronological sequences of dense
//! item ids, after rating and k-core filtering.

use super::error::{DataError, Result};
use super::idmap::IdMap;
use super::kcore::k_core;
use super::log::{InteractionLog, ItemText};

/// The fewest items a user needs for a leave-one-out split with a non-empty validation history.
pub const MIN_USER_ITEMS: usize = 3;

/// How a raw log becomes a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetOptions {
    /// Keep only users and items with at least this many interactions, iterated to a fixed
    /// point (0 or 1 disables it).
    pub k_core: usize,
    /// Drop interactions rated below this value, where the format has ratings.
    pub min_rating: Option<f32>,
}

impl Default for DatasetOptions {
    fn default() -> Self {
        Self { k_core: 5, min_rating: None }
    }
}

/// Chronological per-user sequences over a dense item catalogue.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The dataset's name (file stem or `synthetic`).
    pub name: String,
    /// Dense user id <-> raw user id.
    pub users: IdMap,
    /// Dense item id <-> raw item id.
    pub items: IdMap,
    /// For each dense user, the dense item ids in chronological order (ties: file order).
    pub sequences: Vec<Vec<u32>>,
    /// The timestamps of `sequences`, entry for entry, when the log has real ones
    /// ([`InteractionLog::has_timestamps`]); `None` where file positions stood in for them.
    pub times: Option<Vec<Vec<f64>>>,
    /// For each dense item, its text fields (empty where the input has none).
    pub item_text: Vec<ItemText>,
    /// Interactions in the raw log, before any filtering.
    pub raw_interactions: usize,
}

/// Each user's `(time, interned item)` pairs in chronological order (a stable sort: equal
/// times keep their file order), users in order of first appearance, skipping interactions
/// rated below `min_rating` and users left with none.
fn sorted_per_user(log: &InteractionLog, min_rating: Option<f32>) -> Vec<(u32, Vec<(f64, u32)>)> {
    let mut per_user: Vec<Vec<(f64, u32)>> = vec![Vec::new(); log.users.len()];
    for r in &log.records {
        if let (Some(min), Some(rating)) = (min_rating, r.rating) {
            if rating < min {
                continue;
            }
        }
        per_user[r.user as usize].push((r.time, r.item));
    }
    per_user
        .into_iter()
        .enumerate()
        .filter(|(_, s)| !s.is_empty())
        .map(|(u, mut s)| {
            s.sort_by(|a, b| a.0.total_cmp(&b.0));
            (u as u32, s)
        })
        .collect()
}

/// The times of the interactions that k-core filtering kept, parallel to `kept`.
///
/// [`k_core`] drops whole users and drops an item from every sequence at once, so a kept
/// user's sequence is their sorted sequence restricted to the items that survive anywhere.
/// `num_items` bounds the interned item indices.
fn kept_times(sorted: &[(u32, Vec<(f64, u32)>)], kept: &[(u32, Vec<u32>)], num_items: usize) -> Vec<Vec<f64>> {
    let mut alive = vec![false; num_items];
    kept.iter().flat_map(|(_, s)| s).for_each(|&i| alive[i as usize] = true);
    let by_user: std::collections::HashMap<u32, &Vec<(f64, u32)>> = sorted.iter().map(|(u, s)| (*u, s)).collect();
    kept.iter()
        .map(|(u, items)| {
            let s = by_user[u];
            let t: Vec<f64> = s.iter().filter(|&&(_, i)| alive[i as usize]).map(|&(t, _)| t).collect();
            assert_eq!(t.len(), items.len(), "k_core kept a different sequence for user {u}");
            t
        })
        .collect()
}

impl Dataset {
    /// Sorts, filters and remaps `log`; keeps the timestamps in [`Dataset::times`] when the
    /// log has real ones.
    ///
    /// Errors when nothing is left after filtering, or when a user keeps fewer than
    /// [`MIN_USER_ITEMS`] items (no leave-one-out split is possible for them).
    pub fn from_log(log: InteractionLog, opts: &DatasetOptions) -> Result<Self> {
        let raw_interactions = log.records.len();
        let sorted = sorted_per_user(&log, opts.min_rating);
        let mut sequences: Vec<(u32, Vec<u32>)> =
            sorted.iter().map(|(u, s)| (*u, s.iter().map(|&(_, i)| i).collect())).collect();
        k_core(&mut sequences, log.items.len(), opts.k_core);
        let times = log.has_timestamps.then(|| kept_times(&sorted, &sequences, log.items.len()));
        drop(sorted);

        if sequences.is_empty() {
            return Err(DataError::dataset(
                &log.name,
                format!(
                    "no interactions left after filtering (k_core = {}, min_rating = {:?}) \
                     out of {raw_interactions} in the input",
                    opts.k_core, opts.min_rating
                ),
            ));
        }
        let short: Vec<&(u32, Vec<u32>)> =
            sequences.iter().filter(|(_, s)| s.len() < MIN_USER_ITEMS).collect();
        if let Some((u, s)) = short.first() {
            let what = if s.len() == 1 { "a one-item history" } else { "a two-item history" };
            return Err(DataError::dataset(
                &log.name,
                format!(
                    "{} users have fewer than {MIN_USER_ITEMS} interactions after filtering \
                     (user {:?} has {what}); leave-one-out needs at least {MIN_USER_ITEMS}: \
                     set data.k_core to {MIN_USER_ITEMS} or more",
                    short.len(),
                    log.users.name(*u)
                ),
            ));
        }

        let users = IdMap::from_first_appearance(sequences.iter().map(|(u, _)| log.users.name(*u)));
        let items = IdMap::from_first_appearance(
            sequences.iter().flat_map(|(_, s)| s.iter().map(|&i| log.items.name(i))),
        );
        // Interned item index -> dense id.
        let mut item_dense = vec![u32::MAX; log.items.len()];
        for (i, slot) in item_dense.iter_mut().enumerate() {
            if let Some(d) = items.dense(log.items.name(i as u32)) {
                *slot = d;
            }
        }
        let mut dense_sequences = vec![Vec::new(); users.len()];
        let mut dense_times = times.as_ref().map(|_| vec![Vec::new(); users.len()]);
        let mut times = times.map(Vec::into_iter);
        for (u, s) in sequences {
            let d = users.dense(log.users.name(u)).expect("user was mapped") as usize;
            dense_sequences[d] = s.into_iter().map(|i| item_dense[i as usize]).collect();
            if let (Some(out), Some(t)) = (dense_times.as_mut(), times.as_mut()) {
                out[d] = t.next().expect("one time sequence per kept user");
            }
        }
        let mut item_text = log.item_text;
        let item_text = items
            .raw_ids()
            .iter()
            .map(|raw| item_text.remove(raw).unwrap_or_default())
            .collect();
        Ok(Self {
            name: log.name,
            users,
            items,
            sequences: dense_sequences,
            times: dense_times,
            item_text,
            raw_interactions,
        })
    }

    /// Number of users.
    pub fn num_users(&self) -> usize {
        self.users.len()
    }

    /// Number of items in the catalogue.
    pub fn num_items(&self) -> usize {
        self.items.len()
    }

    /// Number of interactions kept.
    pub fn num_interactions(&self) -> usize {
        self.sequences.iter().map(Vec::len).sum()
    }

    /// Number of items that have at least one text field.
    pub fn items_with_text(&self) -> usize {
        self.item_text.iter().filter(|t| !t.is_empty()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(rows: &[(&str, &str, f64)]) -> InteractionLog {
        let mut log = InteractionLog::new("t");
        for &(u, i, t) in rows {
            log.push(u, i, t, None);
        }
        log
    }

    const NO_CORE: DatasetOptions = DatasetOptions { k_core: 0, min_rating: None };

    fn timed(rows: &[(&str, &str, f64)]) -> InteractionLog {
        InteractionLog { has_timestamps: true, ..log(rows) }
    }

    #[test]
    fn times_follow_the_sorted_sequences() {
        let l = timed(&[("u", "c", 2.0), ("u", "a", 1.0), ("u", "b", 2.0), ("u", "d", 0.5)]);
        let ds = Dataset::from_log(l, &NO_CORE).unwrap();
        assert_eq!(ds.times, Some(vec![vec![0.5, 1.0, 2.0, 2.0]]));
    }

    #[test]
    fn positions_are_not_kept_as_times() {
        let l = log(&[("u", "a", 0.0), ("u", "b", 1.0), ("u", "c", 2.0)]);
        assert_eq!(Dataset::from_log(l, &NO_CORE).unwrap().times, None);
    }

    #[test]
    fn times_stay_in_step_through_k_core_and_rating_filters() {
        // Items "x" and "q" appear once and go with 2-core filtering; user "w" then has one
        // item and goes too, taking item "y" (now seen once) from user "u". Each time is
        // unique, so a time out of step with its item would show.
        let mut l = timed(&[
            ("v", "b", 22.0), ("u", "a", 13.0), ("u", "x", 12.0), ("v", "a", 21.0), ("u", "b", 11.0),
            ("w", "y", 31.0), ("u", "y", 14.0), ("v", "c", 20.0), ("u", "c", 10.0), ("w", "q", 30.0),
            ("v", "z", 23.0), ("u", "z", 15.0),
        ]);
        l.push("u", "a", 16.0, Some(1.0)); // filtered by rating
        let ds = Dataset::from_log(l, &DatasetOptions { k_core: 2, min_rating: Some(3.0) }).unwrap();
        let times = ds.times.as_ref().unwrap();
        assert_eq!(ds.num_users(), 2);
        for (u, s) in ds.sequences.iter().enumerate() {
            let raw: Vec<&str> = s.iter().map(|&i| ds.items.raw(i)).collect();
            match ds.users.raw(u as u32) {
                "u" => {
                    assert_eq!(raw, ["c", "b", "a", "z"]);
                    assert_eq!(times[u], [10.0, 11.0, 13.0, 15.0]);
                }
                "v" => {
                    assert_eq!(raw, ["c", "a", "b", "z"]);
                    assert_eq!(times[u], [20.0, 21.0, 22.0, 23.0]);
                }
                other => panic!("user {other} should have gone"),
            }
        }
    }

    #[test]
    fn sorts_by_time_and_keeps_file_order_on_ties() {
        let l = log(&[("u", "c", 2.0), ("u", "a", 1.0), ("u", "b", 2.0), ("u", "d", 0.5)]);
        let ds = Dataset::from_log(l, &NO_CORE).unwrap();
        let raw: Vec<&str> = ds.sequences[0].iter().map(|&i| ds.items.raw(i)).collect();
        assert_eq!(raw, ["d", "a", "c", "b"]);
    }

    #[test]
    fn min_rating_filters() {
        let mut l = InteractionLog::new("t");
        for (i, r) in [(1, 5.0), (2, 1.0), (3, 4.0), (4, 4.5)] {
            l.push("u", &i.to_string(), i as f64, Some(r));
        }
        let opts = DatasetOptions { k_core: 0, min_rating: Some(4.0) };
        let ds = Dataset::from_log(l, &opts).unwrap();
        assert_eq!(ds.items.raw_ids(), &["1", "3", "4"]);
    }

    #[test]
    fn short_histories_are_an_error_naming_the_user() {
        let l = log(&[("a", "1", 0.0), ("a", "2", 1.0), ("a", "3", 2.0), ("b", "1", 0.0)]);
        let err = Dataset::from_log(l, &NO_CORE).unwrap_err().to_string();
        assert!(err.contains("user \"b\" has a one-item history"), "{err}");
        assert!(err.contains("k_core"), "{err}");
    }

    #[test]
    fn empty_after_filtering_is_an_error() {
        let l = log(&[("a", "1", 0.0), ("a", "2", 1.0), ("a", "3", 2.0)]);
        let err = Dataset::from_log(l, &DatasetOptions::default()).unwrap_err().to_string();
        assert!(err.contains("no interactions left after filtering"), "{err}");
    }
}
