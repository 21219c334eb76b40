//! Sealed fields on arbitrary text: they open to exactly what was sealed, only in
//! their own event and field, never show the text, and read as erased once the
//! key is gone.
#![allow(clippy::unwrap_used)]

use frontline_privacy::{DataKey, ERASED, Fields, PersonalKey};
use proptest::prelude::*;

proptest! {
    #[test]
    fn any_text_seals_opens_and_erases(
        text in "\\PC{1,200}",
        field in "[a-z_.0-9]{1,20}",
        event in "[0-9a-f-]{36}",
    ) {
        let key = PersonalKey::Live(DataKey::generate());
        let fields = Fields::new(&key, &event);
        let sealed = fields.seal(&field, text.clone());
        prop_assert!(sealed.starts_with("fl1."));
        if text.len() >= 4 {
            prop_assert!(!sealed.contains(text.as_str()));
        }
        prop_assert_eq!(fields.open(&field, sealed.clone()).unwrap(), text.clone());
        let moved = format!("{field}x");
        prop_assert!(fields.open(&moved, sealed.clone()).is_err());
        let other_event = format!("{event}x");
        prop_assert!(Fields::new(&key, &other_event).open(&field, sealed.clone()).is_err());
        let other_key = PersonalKey::Live(DataKey::generate());
        prop_assert!(Fields::new(&other_key, &event).open(&field, sealed.clone()).is_err());
        let gone = PersonalKey::Forgotten;
        prop_assert_eq!(Fields::new(&gone, &event).open(&field, sealed).unwrap(), ERASED);
    }
}
