//! Iterative k-core filtering of user sequences.

/// Removes, until nothing changes, every item with fewer than `k` interactions (from every
/// sequence) and every user with fewer than `k` interactions. `k <= 1` keeps everything.
/// `sequences` holds `(user, items)` pairs; `num_items` bounds the item indices.
pub fn k_core(sequences: &mut Vec<(u32, Vec<u32>)>, num_items: usize, k: usize) {
    if k <= 1 {
        return;
    }
    let mut counts = vec![0usize; num_items];
    loop {
        counts.iter_mut().for_each(|c| *c = 0);
        for (_, s) in sequences.iter() {
            for &i in s {
                counts[i as usize] += 1;
            }
        }
        let before: usize = sequences.iter().map(|(_, s)| s.len()).sum();
        for (_, s) in sequences.iter_mut() {
            s.retain(|&i| counts[i as usize] >= k);
        }
        sequences.retain(|(_, s)| s.len() >= k);
        let after: usize = sequences.iter().map(|(_, s)| s.len()).sum();
        if after == before {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterates_to_a_fixed_point() {
        // Items 3, 4 and 5 appear once. Dropping 3 leaves user 2 with one item; dropping
        // user 2 leaves item 9 with one interaction, which then goes from user 1 too.
        let mut s = vec![
            (0, vec![1, 2, 1]),
            (1, vec![1, 2, 9]),
            (2, vec![9, 3]),
            (3, vec![4, 5]),
        ];
        k_core(&mut s, 10, 2);
        assert_eq!(s, vec![(0, vec![1, 2, 1]), (1, vec![1, 2])]);
        let mut counts = [0; 10];
        s.iter().flat_map(|(_, v)| v).for_each(|&i| counts[i as usize] += 1);
        assert!(counts.iter().all(|&c| c == 0 || c >= 2));
    }

    #[test]
    fn k_one_keeps_everything() {
        let mut s = vec![(0, vec![1])];
        k_core(&mut s, 2, 1);
        assert_eq!(s, vec![(0, vec![1])]);
    }
}
