//! Leave-one-out split and history windows (SPEC section 1).
//!
//! For a user with items `s[0..n]`: `s[n-1]` is the test target (history `s[..n-1]`), `s[n-2]`
//! the validation target (history `s[..n-2]`), and inside `s[..n-2]` every item but the first
//! is a training target with the items before it as history: `n - 3` training examples.

use super::dataset::Dataset;

/// One prediction problem: user `user`'s item at position `target` is to be predicted from the
/// items before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Example {
    /// Dense user id.
    pub user: u32,
    /// Position of the target in the user's sequence (>= 1).
    pub target: u32,
}

/// Which part of the split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Training examples.
    Train,
    /// Validation: second-to-last item of each user.
    Valid,
    /// Test: last item of each user.
    Test,
}

/// The leave-one-out split of a dataset, with the history window length.
#[derive(Debug, Clone)]
pub struct Split {
    /// Training examples, user by user, in chronological order.
    pub train: Vec<Example>,
    /// One validation example per user.
    pub valid: Vec<Example>,
    /// One test example per user.
    pub test: Vec<Example>,
    /// History window: the last `max_len` items before the target.
    pub max_len: usize,
}

impl Split {
    /// Splits every user of `ds` (each has at least three items, see [`Dataset::from_log`]).
    pub fn leave_one_out(ds: &Dataset, max_len: usize) -> Self {
        assert!(max_len > 0, "max_len must be positive");
        let mut train = Vec::with_capacity(ds.num_interactions().saturating_sub(3 * ds.num_users()));
        let mut valid = Vec::with_capacity(ds.num_users());
        let mut test = Vec::with_capacity(ds.num_users());
        for (u, s) in ds.sequences.iter().enumerate() {
            let (u, n) = (u as u32, s.len() as u32);
            assert!(n >= 3, "user {u} has {n} items; Dataset::from_log guarantees at least 3");
            train.extend((1..n - 2).map(|target| Example { user: u, target }));
            valid.push(Example { user: u, target: n - 2 });
            test.push(Example { user: u, target: n - 1 });
        }
        Self { train, valid, test, max_len }
    }

    /// The examples of one part.
    pub fn part(&self, part: Part) -> &[Example] {
        match part {
            Part::Train => &self.train,
            Part::Valid => &self.valid,
            Part::Test => &self.test,
        }
    }

    /// The history window of `ex`: at most `max_len` items, oldest first.
    pub fn history<'a>(&self, ds: &'a Dataset, ex: Example) -> &'a [u32] {
        let s = &ds.sequences[ex.user as usize];
        let end = ex.target as usize;
        &s[end.saturating_sub(self.max_len)..end]
    }

    /// The target item of `ex`.
    pub fn target(&self, ds: &Dataset, ex: Example) -> u32 {
        ds.sequences[ex.user as usize][ex.target as usize]
    }

    /// The part of each user's sequence that training may see: all but the last two items.
    pub fn train_items<'a>(ds: &'a Dataset) -> impl Iterator<Item = &'a [u32]> + 'a {
        ds.sequences.iter().map(|s| &s[..s.len() - 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Dataset, DatasetOptions, InteractionLog};

    fn dataset(lens: &[usize]) -> Dataset {
        let mut log = InteractionLog::new("t");
        for (u, &n) in lens.iter().enumerate() {
            for i in 0..n {
                log.push(&u.to_string(), &(u * 100 + i).to_string(), i as f64, None);
            }
        }
        Dataset::from_log(log, &DatasetOptions { k_core: 0, min_rating: None }).unwrap()
    }

    #[test]
    fn counts_follow_the_spec() {
        let ds = dataset(&[3, 5, 30]);
        let split = Split::leave_one_out(&ds, 20);
        assert_eq!(split.train.len(), (3 - 3) + (5 - 3) + (30 - 3));
        assert_eq!(split.valid.len(), 3);
        assert_eq!(split.test.len(), 3);
    }

    #[test]
    fn windows_and_targets() {
        let ds = dataset(&[30]);
        let split = Split::leave_one_out(&ds, 20);
        let test = split.test[0];
        assert_eq!(split.target(&ds, test), ds.sequences[0][29]);
        assert_eq!(split.history(&ds, test), &ds.sequences[0][9..29]);
        let valid = split.valid[0];
        assert_eq!(split.history(&ds, valid), &ds.sequences[0][8..28]);
        let first = split.train[0];
        assert_eq!(split.history(&ds, first), &ds.sequences[0][..1]);
        assert_eq!(split.target(&ds, first), ds.sequences[0][1]);
        // No training target reaches the validation or test item.
        assert!(split.train.iter().all(|e| e.target < 28));
    }
}
