//! Pagination cursors and the query strings of every listing and of the
//! long poll (`eagate_server::fuzzing::parse_query`: the server's query
//! extractor, DTOs and domain parsing).
//!
//! - Nothing panics; a refused query is a 400 or 422 problem.
//! - A cursor is accepted only as `Display` writes it: parse → write gives
//!   back the very text, and parses again to the same position.
//! - `limit` is accepted exactly from 1 to 100, `status` exactly as
//!   `active` or `revoked`, and an accepted query written back as a query
//!   string parses to the same page request.

use arbitrary::Arbitrary;
use eagate_domain::pagination::{Cursor, PageRequest};
use eagate_server::fuzzing::{ParsedQuery, QueryString, parse_query};

#[derive(Arbitrary, Debug)]
pub enum Input<'a> {
    Cursor(&'a str),
    Page {
        limit: Option<&'a str>,
        cursor: Option<&'a str>,
    },
    Query {
        operation: u8,
        raw: &'a str,
    },
}

fn check_cursor(raw: &str) {
    let Ok(cursor) = Cursor::parse(raw) else {
        return;
    };
    let written = cursor.to_string();
    assert_eq!(written, raw, "a cursor is accepted only as it is written");
    assert_eq!(Cursor::parse(&written), Ok(cursor));
}

/// The documented rule: an integer from 1 to 100, written in decimal.
fn model_limit(raw: &str) -> bool {
    let digits = raw.strip_prefix('+').unwrap_or(raw);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.parse::<u32>().is_ok_and(|n| (1..=100).contains(&n))
}

fn check_page(limit: Option<&str>, cursor: Option<&str>) {
    let parsed = PageRequest::parse(limit, cursor);
    let expected = limit.is_none_or(model_limit) && cursor.is_none_or(|c| Cursor::parse(c).is_ok());
    assert_eq!(parsed.is_ok(), expected, "{limit:?} {cursor:?}: {parsed:?}");
    match parsed {
        Ok(page) => {
            assert!((1..=PageRequest::MAX_LIMIT).contains(&page.limit));
            if limit.is_none() {
                assert_eq!(page.limit, PageRequest::DEFAULT_LIMIT);
            }
        }
        Err(errors) => {
            let fields: Vec<&str> = errors.iter().map(|e| e.field).collect();
            let expected: Vec<&str> = [
                limit.is_some_and(|l| !model_limit(l)).then_some("limit"),
                cursor
                    .is_some_and(|c| Cursor::parse(c).is_err())
                    .then_some("cursor"),
            ]
            .into_iter()
            .flatten()
            .collect();
            assert_eq!(fields, expected);
        }
    }
}

/// Percent-encodes `value` for a query string (everything but unreserved).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn check_query(operation: QueryString, raw: &str) {
    match parse_query(operation, raw) {
        Err(refused) => assert!(
            [400, 422].contains(&refused.status),
            "{operation:?} {raw:?}: {refused:?}"
        ),
        Ok(ParsedQuery::Page { status, page }) => {
            assert!((1..=PageRequest::MAX_LIMIT).contains(&page.limit));
            let mut written = vec![format!("limit={}", page.limit)];
            if let Some(after) = page.after {
                written.push(format!("cursor={}", encode(&after.to_string())));
            }
            if let Some(status) = status {
                written.push(format!("status={}", status.as_str()));
            }
            let written = written.join("&");
            let again = parse_query(operation, &written);
            assert_eq!(
                again.as_ref().ok(),
                Some(&ParsedQuery::Page { status, page }),
                "{operation:?}: {raw:?} written back as {written:?}: {again:?}"
            );
        }
        Ok(ParsedQuery::Poll { limit, wait }) => {
            let mut written = Vec::new();
            if let Some(limit) = &limit {
                written.push(format!("limit={}", encode(limit)));
            }
            if let Some(wait) = &wait {
                written.push(format!("wait={}", encode(wait)));
            }
            let written = written.join("&");
            let again = parse_query(operation, &written);
            assert_eq!(
                again.as_ref().ok(),
                Some(&ParsedQuery::Poll { limit, wait }),
                "{operation:?}: {raw:?} written back as {written:?}"
            );
        }
        Ok(ParsedQuery::Accounts { search, page }) => {
            assert!((1..=PageRequest::MAX_LIMIT).contains(&page.limit));
            let mut written = vec![format!("limit={}", page.limit)];
            if let Some(after) = page.after {
                written.push(format!("cursor={}", encode(&after.to_string())));
            }
            if let Some(search) = &search {
                assert!((1..=64).contains(&search.chars().count()), "{search:?}");
                written.push(format!("q={}", encode(search)));
            }
            let written = written.join("&");
            let again = parse_query(operation, &written);
            assert_eq!(
                again.as_ref().ok(),
                Some(&ParsedQuery::Accounts { search, page }),
                "{operation:?}: {raw:?} written back as {written:?}: {again:?}"
            );
        }
        Ok(ParsedQuery::AdminAudit { filter, page }) => {
            assert!((1..=PageRequest::MAX_LIMIT).contains(&page.limit));
            if let (Some(from), Some(to)) = (filter.from, filter.to) {
                assert!(from < to, "{raw:?}");
            }
        }
        Ok(ParsedQuery::Upload { .. }) => {}
    }
}

pub fn check(input: Input<'_>) {
    match input {
        Input::Cursor(raw) => check_cursor(raw),
        Input::Page { limit, cursor } => check_page(limit, cursor),
        Input::Query { operation, raw } => {
            let operation = QueryString::ALL[usize::from(operation) % QueryString::ALL.len()];
            check_query(operation, raw);
        }
    }
}
