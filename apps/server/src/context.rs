//! What the handling of one request knows about it wherever it runs: its
//! id (a task-local set by the gateway for the request's whole task).

use std::cell::Cell;
use std::future::Future;

/// The longest request id a client may send (`X-Request-Id`).
pub const MAX_REQUEST_ID: usize = 128;

/// A request's id, inline (no allocation): the client's `X-Request-Id` or
/// a generated UUIDv7.
#[derive(Clone, Copy)]
pub struct RequestId {
    len: u8,
    bytes: [u8; MAX_REQUEST_ID],
}

impl RequestId {
    /// The client's id, if it is 1–128 of `A-Z a-z 0-9 - _ . :`.
    pub fn from_client(id: &[u8]) -> Option<Self> {
        let acceptable = (1..=MAX_REQUEST_ID).contains(&id.len())
            && id
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        acceptable.then(|| {
            let mut bytes = [0; MAX_REQUEST_ID];
            bytes[..id.len()].copy_from_slice(id);
            Self {
                len: id.len() as u8,
                bytes,
            }
        })
    }

    /// A new UUIDv7: the time in milliseconds, then 74 bits that are unique
    /// per process (a random start per thread, a counter per request) —
    /// an id needs to be unique, not unpredictable, so no system call for
    /// randomness per request.
    pub fn generate() -> Self {
        thread_local! {
            static NEXT: Cell<u128> = Cell::new(u128::from_le_bytes(*uuid::Uuid::new_v4().as_bytes()));
        }
        let unique = NEXT.with(|next| {
            let value = next.get();
            next.set(value.wrapping_add(1));
            value
        });
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let uuid = uuid::Builder::from_unix_timestamp_millis(
            millis,
            &unique.to_be_bytes()[6..].try_into().unwrap_or_default(),
        )
        .into_uuid();
        let mut bytes = [0; MAX_REQUEST_ID];
        let len = uuid.hyphenated().encode_lower(&mut bytes).len();
        Self {
            len: len as u8,
            bytes,
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

tokio::task_local! {
    static REQUEST_ID: RequestId;
}

/// The id of the request being handled on this task, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.as_str().to_owned()).ok()
}

/// Runs `future` as the handling of request `id`.
pub async fn with_request_id<F: Future>(id: RequestId, future: F) -> F::Output {
    REQUEST_ID.scope(id, future).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_client_ids_are_kept_and_others_refused() {
        assert_eq!(
            RequestId::from_client(b"0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b").map(|i| i.to_string()),
            Some("0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b".to_owned())
        );
        assert_eq!(
            RequestId::from_client(b"lb:abc.123_x").map(|i| i.to_string()),
            Some("lb:abc.123_x".to_owned())
        );
        assert!(RequestId::from_client(&[b'a'; MAX_REQUEST_ID]).is_some());
        for bad in [
            &b""[..],
            b"has space",
            b"new\nline",
            &[b'a'; MAX_REQUEST_ID + 1],
            "é".as_bytes(),
        ] {
            assert!(RequestId::from_client(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn generated_ids_are_distinct_uuid_v7_in_time_order() {
        let ids: Vec<String> = (0..1000).map(|_| RequestId::generate().to_string()).collect();
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len());
        for id in &ids {
            let uuid = uuid::Uuid::parse_str(id).expect("a UUID");
            assert_eq!(uuid.get_version_num(), 7, "{id}");
            assert_eq!(id.len(), 36);
        }
        let (a, b) = (
            uuid::Uuid::parse_str(&ids[0]).unwrap(),
            uuid::Uuid::parse_str(&ids[999]).unwrap(),
        );
        assert!(a.get_timestamp().unwrap().to_unix() <= b.get_timestamp().unwrap().to_unix());
    }
}
