//! The raw interaction log: what a reader produces before any sorting, filtering or remapping.

use std::collections::HashMap;

/// Interns raw id strings into consecutive indices, in order of first appearance.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    index: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    /// The index of `name`, adding it if new.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.into());
        self.index.insert(name.into(), i);
        i
    }

    /// The index of `name`, if present.
    pub fn get(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    /// The name of index `i`.
    pub fn name(&self, i: u32) -> &str {
        &self.names[i as usize]
    }

    /// Number of distinct names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether nothing was interned.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// One interaction, with interned user and item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record {
    /// Interned user index.
    pub user: u32,
    /// Interned item index.
    pub item: u32,
    /// Time of the interaction; readers without timestamps use the position in the file (see
    /// [`InteractionLog::has_timestamps`]).
    pub time: f64,
    /// Rating, where the format has one.
    pub rating: Option<f32>,
}

/// The text fields of one item, in the order the file gives them (e.g. title, genres).
pub type ItemText = Vec<(String, String)>;

/// Everything a reader found: interactions in file order plus optional item text.
#[derive(Debug, Default, Clone)]
pub struct InteractionLog {
    /// A name for messages (file or dataset name).
    pub name: String,
    /// Raw user ids.
    pub users: Interner,
    /// Raw item ids.
    pub items: Interner,
    /// Interactions in file order (ties in time keep this order).
    pub records: Vec<Record>,
    /// Item text keyed by raw item id, for items the item file describes.
    pub item_text: HashMap<String, ItemText>,
    /// Whether [`Record::time`] holds real timestamps (a timestamp column or field in the
    /// file, or the synthetic generator's steps) rather than positions standing in for them.
    pub has_timestamps: bool,
}

impl InteractionLog {
    /// An empty log called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), ..Default::default() }
    }

    /// Appends one interaction given raw ids.
    pub fn push(&mut self, user: &str, item: &str, time: f64, rating: Option<f32>) {
        let user = self.users.intern(user);
        let item = self.items.intern(item);
        self.records.push(Record { user, item, time, rating });
    }
}

/// Checks a raw id token: non-empty, no surrounding whitespace issues, not a negative number.
/// Returns the trimmed id or a message saying what is wrong.
pub fn check_id<'a>(what: &str, raw: &'a str) -> Result<&'a str, String> {
    let id = raw.trim();
    if id.is_empty() {
        return Err(format!("empty {what} id"));
    }
    if id.starts_with('-') && id[1..].parse::<f64>().is_ok() {
        return Err(format!("negative {what} id {id:?}"));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interner_keeps_first_appearance_order() {
        let mut i = Interner::default();
        assert_eq!(i.intern("b"), 0);
        assert_eq!(i.intern("a"), 1);
        assert_eq!(i.intern("b"), 0);
        assert_eq!(i.name(1), "a");
        assert_eq!(i.get("c"), None);
        assert_eq!(i.len(), 2);
    }

    #[test]
    fn ids_are_checked() {
        assert_eq!(check_id("item", " 12 "), Ok("12"));
        assert_eq!(check_id("item", "Toy Story (1995)"), Ok("Toy Story (1995)"));
        assert!(check_id("user", "").unwrap_err().contains("empty user id"));
        assert!(check_id("item", "-3").unwrap_err().contains("negative item id"));
        assert_eq!(check_id("item", "-a"), Ok("-a"));
    }
}
