//! Keyset pagination: newest first, stable while items are added.

use std::fmt;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::validation::FieldError;

/// The position after which a page continues: the (time, id) of the last
/// item seen. Opaque to clients: `<hex micros>.<uuid hex>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    pub fn new(at: DateTime<Utc>, id: Uuid) -> Self {
        Self { at, id }
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let invalid = || FieldError::new("cursor", "invalid", "is not a cursor returned by this API");
        let (micros, id) = raw.split_once('.').ok_or_else(invalid)?;
        // Only what `Display` writes: lowercase hex digits, no sign (a
        // negative time could even lie outside what the database stores),
        // no leading zero — so each position has exactly one spelling.
        let hex = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let leading_zero = micros.len() > 1 && micros.starts_with('0');
        if micros.is_empty()
            || micros.len() > 15
            || leading_zero
            || id.len() != 32
            || !hex(micros)
            || !hex(id)
        {
            return Err(invalid());
        }
        let micros = i64::from_str_radix(micros, 16).map_err(|_| invalid())?;
        let at = DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?;
        let id = Uuid::try_parse(id).map_err(|_| invalid())?;
        Ok(Self { at, id })
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}.{}", self.at.timestamp_micros(), self.id.simple())
    }
}

/// Which page to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<Cursor>,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 100;

    /// Validates `limit` (an integer from 1 to 100, default 50) and
    /// `cursor`, as given in a query string.
    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let limit = match limit.map(|l| l.parse::<u32>()) {
            None => Self::DEFAULT_LIMIT,
            Some(Ok(n)) if (1..=Self::MAX_LIMIT).contains(&n) => n,
            Some(_) => {
                errors.push(FieldError::new(
                    "limit",
                    "out_of_range",
                    format!("must be from 1 to {}", Self::MAX_LIMIT),
                ));
                Self::DEFAULT_LIMIT
            }
        };
        let after = match cursor.map(Cursor::parse).transpose() {
            Ok(after) => after,
            Err(e) => {
                errors.push(e);
                None
            }
        };
        if errors.is_empty() {
            Ok(Self { limit, after })
        } else {
            Err(errors)
        }
    }

    pub fn first(limit: u32) -> Self {
        Self { limit, after: None }
    }
}

/// One page of results and where the next one starts, if there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` items fetched in order: the extra
    /// item only proves that another page exists.
    pub fn from_overfetch(mut items: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> Cursor) -> Self {
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next = if more { items.last().map(cursor_of) } else { None };
        Self { items, next }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn limits_are_checked() {
        assert_eq!(PageRequest::parse(None, None).unwrap().limit, 50);
        assert_eq!(PageRequest::parse(Some("100"), None).unwrap().limit, 100);
        for bad in ["0", "-1", "101", "99999999999999999999", "ten", "", "1.5"] {
            assert_eq!(PageRequest::parse(Some(bad), None).unwrap_err()[0].field, "limit");
        }
        let errors = PageRequest::parse(Some("0"), Some("nope")).unwrap_err();
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn overfetch_yields_a_next_cursor_only_when_more_exist() {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let c = |n: &u128| Cursor::new(at, Uuid::from_u128(*n));
        let page = Page::from_overfetch(vec![3u128, 2, 1], 2, c);
        assert_eq!(page.items, [3, 2]);
        assert_eq!(page.next, Some(c(&2)));
        let last = Page::from_overfetch(vec![1u128], 2, c);
        assert_eq!(last.next, None);
    }

    #[test]
    fn cursors_are_only_what_display_writes() {
        let id = "01a20542519a7459b239fe5225f79297";
        assert!(Cursor::parse(&format!("660e48b0ec25d.{id}")).is_ok());
        assert_eq!(
            Cursor::parse(&format!("0.{id}")).unwrap().at.timestamp_micros(),
            0
        );
        for bad in [
            format!("-fffffffffffffff.{id}"),
            format!("+660e48b0ec25d.{id}"),
            format!("660E48B0EC25D.{id}"),
            format!("7fffffffffffffff.{id}"),
            format!("660e48b0ec25d.{}", id.to_uppercase()),
            format!("660e48b0ec25d.{{{}}}", &id[..30]),
            // Found by fuzzing (cursor_query): leading zeros spelled the
            // same position a second way.
            format!("0660e48b0ec25d.{id}"),
            format!("00.{id}"),
        ] {
            assert!(Cursor::parse(&bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn cursor_round_trips(micros in 0i64..8_000_000_000_000_000, id in any::<u128>()) {
            let c = Cursor::new(DateTime::from_timestamp_micros(micros).unwrap(), Uuid::from_u128(id));
            prop_assert_eq!(Cursor::parse(&c.to_string()).unwrap(), c);
        }

        #[test]
        fn cursor_parse_never_panics(s in "\\PC{0,80}") {
            let _ = Cursor::parse(&s);
        }

        /// A cursor is accepted only as `Display` writes it: one spelling
        /// per position.
        #[test]
        fn an_accepted_cursor_is_written_back_exactly(s in "[0-9a-fA-F+-]{1,17}\\.[0-9a-f]{31,33}") {
            if let Ok(c) = Cursor::parse(&s) {
                prop_assert_eq!(c.to_string(), s);
            }
        }
    }
}
