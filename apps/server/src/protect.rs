//! Transport protection: client IPs behind trusted proxies, rate limits and
//! the body time limit. (The gateway applies them to each request.)

use std::net::IpAddr;
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use eagate_domain::UnexpectedError;
use eagate_domain::ratelimit::{RateDecision, RateLimit, RateLimiter};
use eagate_memory::InMemoryRateLimiter;
use eagate_redis::RedisRateLimiter;
use ipnet::IpNet;

use crate::config::ProtectionSettings;
use crate::problem::{ApiError, ProblemKind};

/// Where rate-limit counters live: the process, or Redis for all instances
/// — with this process's counters standing in while Redis cannot answer,
/// so an outage never means "unlimited" (each instance then limits on its
/// own).
#[derive(Debug, Clone)]
pub enum Limiter {
    Memory(std::sync::Arc<InMemoryRateLimiter>),
    Redis {
        shared: RedisRateLimiter,
        local: std::sync::Arc<InMemoryRateLimiter>,
    },
}

impl Limiter {
    fn fell_back(e: &UnexpectedError) {
        metrics::counter!("rate_limit_fallbacks_total").increment(1);
        tracing::warn!(error = %e, "rate limiter unavailable; counting in this instance until it is back");
    }
}

impl RateLimiter for Limiter {
    async fn hit(&self, key: &str, limit: RateLimit) -> Result<RateDecision, UnexpectedError> {
        match self {
            Self::Memory(l) => l.hit(key, limit).await,
            Self::Redis { shared, local } => match shared.hit(key, limit).await {
                Ok(decision) => Ok(decision),
                Err(e) => {
                    Self::fell_back(&e);
                    local.hit(key, limit).await
                }
            },
        }
    }

    async fn peek(&self, key: &str, limit: RateLimit) -> Result<RateDecision, UnexpectedError> {
        match self {
            Self::Memory(l) => l.peek(key, limit).await,
            Self::Redis { shared, local } => match shared.peek(key, limit).await {
                Ok(decision) => Ok(decision),
                Err(e) => {
                    Self::fell_back(&e);
                    local.peek(key, limit).await
                }
            },
        }
    }

    async fn refund(&self, key: &str, limit: RateLimit) -> Result<(), UnexpectedError> {
        match self {
            Self::Memory(l) => l.refund(key, limit).await,
            Self::Redis { shared, local } => match shared.refund(key, limit).await {
                Ok(()) => Ok(()),
                Err(e) => {
                    Self::fell_back(&e);
                    local.refund(key, limit).await
                }
            },
        }
    }
}

/// Rate limiting as the routes use it.
#[derive(Debug, Clone)]
pub struct RateLimits {
    limiter: Limiter,
    settings: ProtectionSettings,
}

impl RateLimits {
    pub fn new(limiter: Limiter, settings: ProtectionSettings) -> Self {
        Self { limiter, settings }
    }

    /// Counts a hit; `Err` is the 429 to answer. (With Redis down the
    /// instance's own counters decide: see [`Limiter`].)
    pub async fn check(&self, key: &str, limit: RateLimit) -> Result<(), ApiError> {
        if !self.settings.rate_limits_enabled {
            return Ok(());
        }
        match self.limiter.hit(key, limit).await {
            Ok(d) if d.allowed => Ok(()),
            Ok(d) => Err(too_many(&d, "Too many requests")),
            Err(e) => Err(e.into()),
        }
    }

    pub fn settings(&self) -> &ProtectionSettings {
        &self.settings
    }
}

/// The 429 for an exhausted limit: what was exceeded, when to retry, and
/// the `RateLimit-*` headers.
pub(crate) fn too_many(d: &RateDecision, what: &str) -> ApiError {
    let seconds = d.reset_after.as_secs() + u64::from(d.reset_after.subsec_nanos() > 0);
    ApiError::new(ProblemKind::RateLimited, format!("{what}; retry in {seconds} s."))
        .with_extension("retry_after", serde_json::json!(seconds))
        .with_header(header::RETRY_AFTER, HeaderValue::from(seconds))
        .with_header(
            HeaderName::from_static("ratelimit-limit"),
            HeaderValue::from(d.limit),
        )
        .with_header(
            HeaderName::from_static("ratelimit-remaining"),
            HeaderValue::from(d.remaining),
        )
        .with_header(
            HeaderName::from_static("ratelimit-reset"),
            HeaderValue::from(seconds),
        )
}

/// One `X-Forwarded-For` entry as an address: `1.2.3.4`, `1.2.3.4:5678`,
/// `2001:db8::1` or `[2001:db8::1]:5678`. Anything else (`unknown`, an
/// obfuscated identifier, garbage) is `None`.
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse() {
        return Some(ip);
    }
    if let Some(rest) = entry.strip_prefix('[') {
        let (ip, port) = rest.split_once(']')?;
        return (port.is_empty() || port.strip_prefix(':')?.parse::<u16>().is_ok())
            .then(|| ip.parse().ok())
            .flatten();
    }
    let (ip, port) = entry.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The client's IP: the socket peer, or — when the peer is a trusted proxy
/// — the address that the outermost trusted proxy saw: walking
/// `X-Forwarded-For` from the right, past trusted proxies, the first entry.
/// If that entry is not an address (`unknown`, garbage) the client is
/// unknown: entries further left were written by the client and prove
/// nothing.
pub fn client_ip(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer = req.peer_addr()?.ip();
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let entries: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        match forwarded_address(entry) {
            Some(ip) if is_trusted(&ip) => client = ip,
            Some(ip) => return Some(ip),
            None => return None,
        }
    }
    Some(client)
}

/// How long a client may take to send a request body (app data set at
/// start-up from `EAGATE_REQUEST_TIMEOUT_SECONDS`).
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub Duration);

/// How long a client may take to send a request body.
pub fn body_timeout(req: &HttpRequest) -> Duration {
    req.app_data::<BodyTimeout>()
        .map_or(Duration::from_secs(60), |t| t.0)
}

/// How long a bundle upload may take in all, however steadily its bytes
/// arrive (`EAGATE_BUNDLE_UPLOAD_TIMEOUT_SECONDS`), registered as app data.
#[derive(Debug, Clone, Copy)]
pub struct UploadTimeout(pub Duration);

/// The whole-upload deadline of a bundle upload.
pub fn upload_timeout(req: &HttpRequest) -> Duration {
    req.app_data::<UploadTimeout>()
        .map_or(Duration::from_secs(600), |t| t.0)
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn from_proxy(forwarded: &[&str]) -> Option<IpAddr> {
        let mut req = TestRequest::default().peer_addr("10.0.0.1:40000".parse().unwrap());
        for value in forwarded {
            req = req.append_header(("x-forwarded-for", *value));
        }
        client_ip(&req.to_http_request(), &[net("10.0.0.1/32"), net("10.0.0.2/32")])
    }

    #[test]
    fn forwarded_entries_with_ports_and_brackets_are_addresses() {
        assert_eq!(forwarded_address(" 198.51.100.7 "), Some(ip("198.51.100.7")));
        assert_eq!(forwarded_address("198.51.100.7:5678"), Some(ip("198.51.100.7")));
        assert_eq!(forwarded_address("2001:db8::1"), Some(ip("2001:db8::1")));
        assert_eq!(forwarded_address("[2001:db8::1]:443"), Some(ip("2001:db8::1")));
        assert_eq!(forwarded_address("[2001:db8::1]"), Some(ip("2001:db8::1")));
        for junk in ["unknown", "_hidden", "", "1.2.3.4:99999", "[::1]x", "999.1.1.1"] {
            assert_eq!(forwarded_address(junk), None, "{junk}");
        }
    }

    #[test]
    fn the_client_is_what_the_outermost_trusted_proxy_saw() {
        // The proxy appends the address it saw; anything left of it is the
        // client's own claim.
        assert_eq!(from_proxy(&["6.6.6.6, 198.51.100.7"]), Some(ip("198.51.100.7")));
        assert_eq!(
            from_proxy(&["6.6.6.6", "198.51.100.7:5678"]),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            from_proxy(&["6.6.6.6, [2001:db8::7]:1, 10.0.0.2"]),
            Some(ip("2001:db8::7"))
        );
        // An entry the proxy wrote that is not an address: the client is
        // unknown, never the spoofed entry to its left.
        assert_eq!(from_proxy(&["6.6.6.6, unknown"]), None);
        assert_eq!(from_proxy(&["6.6.6.6, 198.51.100.7:bogus"]), None);
        // Only proxies: the outermost of them.
        assert_eq!(from_proxy(&["10.0.0.2"]), Some(ip("10.0.0.2")));
        assert_eq!(from_proxy(&[]), Some(ip("10.0.0.1")));
    }

    #[test]
    fn a_direct_client_cannot_claim_an_address() {
        let req = TestRequest::default()
            .peer_addr("203.0.113.9:1".parse().unwrap())
            .append_header(("x-forwarded-for", "198.51.100.7"))
            .to_http_request();
        assert_eq!(client_ip(&req, &[net("10.0.0.1/32")]), Some(ip("203.0.113.9")));
    }

    #[test]
    fn a_trusted_network_trusts_each_of_its_addresses_and_no_other() {
        let via = |peer: &str| {
            let req = TestRequest::default()
                .peer_addr(format!("{peer}:40000").parse().unwrap())
                .append_header(("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.244.3.9"))
                .to_http_request();
            client_ip(&req, &[net("10.244.0.0/16")])
        };
        // A peer in the network: its entry and the next proxy's (also in
        // it) are skipped; the client is what the outermost proxy saw.
        assert_eq!(via("10.244.1.2"), Some(ip("198.51.100.7")));
        // A peer outside it is the client itself.
        assert_eq!(via("10.245.0.1"), Some(ip("10.245.0.1")));
    }
}
