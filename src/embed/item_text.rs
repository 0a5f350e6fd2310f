//! The text of an item as the encoder reads it: selected fields as `name: value`, joined by
//! `; ` (e.g. `movie_title: Toy Story; genre: Animation Children's Comedy`).

use crate::data::log::ItemText;

/// Builds the text of one item from `fields` (all of them, in file order, when `wanted` is
/// empty). `None` when none of the wanted fields has a value.
pub fn item_text(fields: &ItemText, wanted: &[String]) -> Option<String> {
    let parts: Vec<String> = if wanted.is_empty() {
        fields.iter().map(|(k, v)| format!("{k}: {v}")).collect()
    } else {
        wanted
            .iter()
            .filter_map(|w| fields.iter().find(|(k, _)| k == w).map(|(k, v)| format!("{k}: {v}")))
            .collect()
    };
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_and_orders_fields() {
        let f: ItemText = vec![("title".into(), "Heat".into()), ("genre".into(), "Crime".into())];
        assert_eq!(item_text(&f, &[]).unwrap(), "title: Heat; genre: Crime");
        assert_eq!(item_text(&f, &["genre".into(), "title".into()]).unwrap(), "genre: Crime; title: Heat");
        assert_eq!(item_text(&f, &["year".into()]), None);
        assert_eq!(item_text(&vec![], &[]), None);
    }
}
