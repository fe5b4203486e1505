//! Rate limiting as a port: fixed-window counters keyed by what is limited
//! (a client IP, an account, a device).

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use crate::error::UnexpectedError;

/// At most `limit` hits per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u32,
    pub window: Duration,
}

impl RateLimit {
    pub const fn per_minute(limit: u32) -> Self {
        Self {
            limit,
            window: Duration::from_secs(60),
        }
    }

    pub const fn per_second(limit: u32) -> Self {
        Self {
            limit,
            window: Duration::from_secs(1),
        }
    }
}

/// The verdict on one hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    pub limit: u32,
    /// Hits left in the current window.
    pub remaining: u32,
    /// Until the window resets.
    pub reset_after: Duration,
}

/// Counts hits per key. Implementations share counters between instances
/// when they can (Redis), or keep them in the process.
pub trait RateLimiter: Send + Sync + 'static {
    /// Counts one hit on `key` and says whether it is within `limit`.
    fn hit(
        &self,
        key: &str,
        limit: RateLimit,
    ) -> impl Future<Output = Result<RateDecision, UnexpectedError>> + Send;

    /// Reads the state of `key` without counting a hit (and without
    /// keeping anything for a key never hit).
    fn peek(
        &self,
        key: &str,
        limit: RateLimit,
    ) -> impl Future<Output = Result<RateDecision, UnexpectedError>> + Send;

    /// Takes back one hit counted on `key` in its current window (never
    /// below zero): for budgets counted before the outcome is known and
    /// given back when it turns out not to count.
    fn refund(&self, key: &str, limit: RateLimit)
    -> impl Future<Output = Result<(), UnexpectedError>> + Send;
}

/// The part of a client address that per-address limits count on: an IPv4
/// address as it is, an IPv4-mapped IPv6 address as its IPv4 address, any
/// other IPv6 address by its /64 prefix (one subscriber's network: a host
/// can take any of its 2^64 addresses at will, so counting them one by one
/// would give it 2^64 budgets).
pub fn limited_address(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

/// The key of a per-address limit: `prefix` and the [`limited_address`]
/// (`unknown` when the address is unknown; such clients share one budget),
/// built on the stack: the device hot path makes one per request and
/// allocates nothing for it.
#[derive(Clone, Copy)]
pub struct AddressKey {
    bytes: [u8; Self::CAPACITY],
    len: usize,
}

impl AddressKey {
    /// Enough for a 40-byte prefix and the longest IPv6 text plus `/64`.
    const CAPACITY: usize = 96;

    pub fn new(prefix: &str, ip: Option<IpAddr>) -> Self {
        let mut key = Self {
            bytes: [0; Self::CAPACITY],
            len: 0,
        };
        // A push can only fall short for an absurd prefix; the key is then
        // cut short, still ASCII, still the same for the same address.
        key.push(prefix.as_bytes());
        match ip.map(limited_address) {
            // Written digit by digit: `Display` through `fmt::write` costs
            // twenty times as much, once per device request.
            Some(IpAddr::V4(v4)) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        key.push(b".");
                    }
                    key.push_decimal(octet);
                }
            }
            Some(IpAddr::V6(v6)) => {
                use std::io::Write as _;
                let mut cursor = std::io::Cursor::new(&mut key.bytes[key.len..]);
                let _ = write!(cursor, "{v6}/64");
                key.len += usize::try_from(cursor.position()).unwrap_or(0);
            }
            None => key.push(b"unknown"),
        }
        key
    }

    fn push(&mut self, text: &[u8]) {
        let n = text.len().min(Self::CAPACITY - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&text[..n]);
        self.len += n;
    }

    fn push_decimal(&mut self, n: u8) {
        let digits = [b'0' + n / 100, b'0' + n / 10 % 10, b'0' + n % 10];
        let skip = match n {
            100.. => 0,
            10.. => 1,
            _ => 2,
        };
        self.push(&digits[skip..]);
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever written (the prefixes are ASCII literals).
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("unreadable-address-key")
    }
}

impl std::fmt::Debug for AddressKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("AddressKey").field(&self.as_str()).finish()
    }
}

/// The decision for a counter at `count` hits with `reset_after` left.
pub fn decide(count: u64, limit: RateLimit, reset_after: Duration) -> RateDecision {
    RateDecision {
        allowed: count <= u64::from(limit.limit),
        limit: limit.limit,
        remaining: u32::try_from(u64::from(limit.limit).saturating_sub(count)).unwrap_or(0),
        reset_after,
    }
}

impl<T: RateLimiter + ?Sized> RateLimiter for std::sync::Arc<T> {
    async fn hit(&self, key: &str, limit: RateLimit) -> Result<RateDecision, UnexpectedError> {
        (**self).hit(key, limit).await
    }

    async fn peek(&self, key: &str, limit: RateLimit) -> Result<RateDecision, UnexpectedError> {
        (**self).peek(key, limit).await
    }

    async fn refund(&self, key: &str, limit: RateLimit) -> Result<(), UnexpectedError> {
        (**self).refund(key, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ip: &str) -> String {
        AddressKey::new("failures:", Some(ip.parse().unwrap()))
            .as_str()
            .to_owned()
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64_prefix() {
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "failures:2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff:ffff:ffff:ffff"), key("2001:db8:1:2::7"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"), "another /64");
        assert_eq!(
            key("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            "failures:ffff:ffff:ffff:ffff::/64",
            "the longest address fits"
        );
    }

    #[test]
    fn an_ipv4_client_is_counted_by_its_address_however_it_is_written() {
        assert_eq!(key("198.51.100.7"), "failures:198.51.100.7");
        assert_eq!(key("::ffff:198.51.100.7"), "failures:198.51.100.7");
        assert_ne!(key("198.51.100.7"), key("198.51.100.8"));
        assert_eq!(AddressKey::new("failures:", None).as_str(), "failures:unknown");
    }

    #[test]
    fn an_ipv4_key_reads_as_the_address_is_displayed() {
        for octet in 0..=255u8 {
            for ip in [
                std::net::Ipv4Addr::new(octet, 0, 9, 255),
                std::net::Ipv4Addr::new(10, octet, 100, octet),
            ] {
                assert_eq!(
                    AddressKey::new("owner:", Some(IpAddr::V4(ip))).as_str(),
                    format!("owner:{ip}"),
                    "the digits of {ip}"
                );
            }
        }
    }

    #[test]
    fn an_overlong_prefix_is_cut_short_not_a_panic() {
        let prefix = "p".repeat(200);
        let cut = AddressKey::new(&prefix, Some("198.51.100.7".parse().unwrap()));
        assert_eq!(
            cut.as_str(),
            &prefix[..AddressKey::CAPACITY],
            "the prefix fills the key"
        );
        let six = AddressKey::new(&prefix[..90], Some("2001:db8::1".parse().unwrap()));
        assert_eq!(
            six.as_str().len(),
            AddressKey::CAPACITY,
            "an IPv6 address cut short at the end"
        );
    }
}
