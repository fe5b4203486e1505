//! Roles, scopes and API keys.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use ipnet::IpNet;
use unicode_normalization::UnicodeNormalization as _;

use crate::account::UserId;
use crate::validation::FieldError;

id_newtype!(
    /// An API key's id.
    ApiKeyId
);

/// What an account may do beyond its own resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Every account: its own devices, signals, configurations, keys.
    Owner,
    /// Also administers the installation (`/api/v1/admin`).
    Admin,
}

impl Role {
    pub const ALL: [Self; 2] = [Self::Owner, Self::Admin];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an API key may do: a fixed list, chosen when the key is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    SignalsPublish,
    SignalsRead,
    DevicesRead,
    DevicesWrite,
    ConfigRead,
    ConfigWrite,
    BundlesWrite,
    DeploymentsWrite,
}

impl Scope {
    pub const ALL: [Self; 8] = [
        Self::SignalsPublish,
        Self::SignalsRead,
        Self::DevicesRead,
        Self::DevicesWrite,
        Self::ConfigRead,
        Self::ConfigWrite,
        Self::BundlesWrite,
        Self::DeploymentsWrite,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SignalsPublish => "signals:publish",
            Self::SignalsRead => "signals:read",
            Self::DevicesRead => "devices:read",
            Self::DevicesWrite => "devices:write",
            Self::ConfigRead => "config:read",
            Self::ConfigWrite => "config:write",
            Self::BundlesWrite => "bundles:write",
            Self::DeploymentsWrite => "deployments:write",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown scope name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?}")]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| UnknownScope(s.to_owned()))
    }
}

/// A key's scopes: at least one, each once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes(BTreeSet<Scope>);

impl Scopes {
    pub const FIELD: &'static str = "scopes";

    /// Parses the scope names a client sent. Duplicates collapse; an
    /// unknown name is an error naming it and the known ones.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, FieldError> {
        if names.is_empty() {
            return Err(FieldError::new(
                Self::FIELD,
                "required",
                format!("must name at least one scope: {}", Self::known()),
            ));
        }
        let mut scopes = BTreeSet::new();
        for name in names {
            let scope = name.as_ref().parse::<Scope>().map_err(|UnknownScope(name)| {
                FieldError::new(
                    Self::FIELD,
                    "unknown_scope",
                    format!("unknown scope {name:?}; known scopes: {}", Self::known()),
                )
            })?;
            scopes.insert(scope);
        }
        Ok(Self(scopes))
    }

    /// Scopes read back from storage (already validated once).
    pub fn from_stored<S: AsRef<str>>(names: &[S]) -> Result<Self, UnknownScope> {
        names
            .iter()
            .map(|n| n.as_ref().parse())
            .collect::<Result<BTreeSet<_>, _>>()
            .map(Self)
    }

    pub fn of(scopes: impl IntoIterator<Item = Scope>) -> Self {
        Self(scopes.into_iter().collect())
    }

    fn known() -> String {
        Scope::ALL.map(Scope::as_str).join(", ")
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    /// In the fixed order of [`Scope::ALL`].
    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.iter().map(Scope::as_str).collect()
    }
}

/// An API key's name, unique among the owner's active keys (compared
/// case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyName(String);

impl ApiKeyName {
    pub const MAX_LEN: usize = 64;
    pub const FIELD: &'static str = "name";

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let normalized: String = raw.trim().nfc().collect();
        let len = normalized.chars().count();
        if len == 0 {
            return Err(FieldError::new(
                Self::FIELD,
                "required",
                "must not be empty or only whitespace",
            ));
        }
        if len > Self::MAX_LEN {
            return Err(FieldError::new(
                Self::FIELD,
                "too_long",
                format!("must be at most {} characters", Self::MAX_LEN),
            ));
        }
        if normalized.chars().any(|c| c.is_control() || is_invisible(c)) {
            return Err(FieldError::new(
                Self::FIELD,
                "invalid_characters",
                "must not contain control characters, bidirectional overrides or invisible characters",
            ));
        }
        Ok(Self(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The uniqueness key: lower-cased.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{00AD}' | '\u{2028}' | '\u{2029}')
}

/// Source networks a key may be used from; empty means anywhere.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AllowedNetworks(Vec<IpNet>);

impl AllowedNetworks {
    pub const FIELD: &'static str = "allowed_cidrs";
    pub const MAX: usize = 32;

    /// Parses CIDRs (`203.0.113.0/24`, `2001:db8::/32`); a bare address is
    /// one host. Host bits must be zero, so what is stored is what was
    /// meant.
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, FieldError> {
        if raw.len() > Self::MAX {
            return Err(FieldError::new(
                Self::FIELD,
                "too_many",
                format!("must list at most {} networks", Self::MAX),
            ));
        }
        let mut networks: Vec<IpNet> = Vec::with_capacity(raw.len());
        for (i, entry) in raw.iter().enumerate() {
            let entry = entry.as_ref().trim();
            let net = match entry.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => match entry.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => {
                        return Err(FieldError::new(
                            Self::FIELD,
                            "invalid_cidr",
                            format!(
                                "entry {i} is not a network in CIDR notation such as 203.0.113.0/24 or 2001:db8::/32"
                            ),
                        ));
                    }
                },
            };
            if net.trunc() != net {
                return Err(FieldError::new(
                    Self::FIELD,
                    "host_bits_set",
                    format!("entry {i} has host bits set; did you mean {}?", net.trunc()),
                ));
            }
            if !networks.contains(&net) {
                networks.push(net);
            }
        }
        Ok(Self(networks))
    }

    /// Networks read back from storage.
    pub fn from_stored<S: AsRef<str>>(raw: &[S]) -> Result<Self, ipnet::AddrParseError> {
        raw.iter()
            .map(|s| s.as_ref().parse::<IpNet>())
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether a request from `ip` may use the key. With a list, an
    /// unknown address is refused. An IPv4-mapped IPv6 address counts as
    /// its IPv4 address.
    pub fn allows(&self, ip: Option<IpAddr>) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let Some(ip) = ip else { return false };
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// In CIDR notation, in the order given.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

/// The keyed hash of an API key: the only form in which a key is stored.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ApiKeyHash(Vec<u8>);

impl ApiKeyHash {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ApiKeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeyHash(..)")
    }
}

/// An API key in clear: exists in memory only, shown to the owner once.
/// `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeySecret(String);

impl ApiKeySecret {
    /// Every key starts with this, so secret scanners can find leaked ones
    /// (docs/security.md gives the whole pattern).
    pub const PREFIX: &'static str = "eag_live_";
    /// Characters of the key (after [`Self::PREFIX`]) shown in listings.
    pub const SHOWN: usize = 6;

    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether a bearer token is meant as an API key (rather than a JWT).
    pub fn looks_like(token: &str) -> bool {
        token.starts_with(Self::PREFIX)
    }

    /// What listings show: the prefix and the first characters.
    pub fn display_prefix(&self) -> String {
        self.0.chars().take(Self::PREFIX.len() + Self::SHOWN).collect()
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeySecret(<redacted>)")
    }
}

/// A freshly generated key: the secret to show once, and what is stored.
#[derive(Debug, Clone)]
pub struct GeneratedApiKey {
    pub secret: ApiKeySecret,
    pub hash: ApiKeyHash,
}

/// A stored API key, as its owner sees it (never the secret or its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub owner: UserId,
    pub name: ApiKeyName,
    /// `eag_live_` and the first characters of the current secret.
    pub prefix: String,
    pub scopes: Scopes,
    pub allowed: AllowedNetworks,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Coalesced: written once per flush interval, not per request.
    pub last_used_at: Option<DateTime<Utc>>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
}

/// A key to store: the key and the hash of its secret.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub key: ApiKey,
    pub hash: ApiKeyHash,
}

/// Validates a requested expiry: in the future, and within
/// `max_lifetime` of `now`.
pub fn parse_expiry(
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    max_lifetime: Duration,
) -> Result<Option<DateTime<Utc>>, FieldError> {
    match expires_at {
        None => Ok(None),
        Some(at) if at <= now => Err(FieldError::new(
            "expires_at",
            "in_the_past",
            "must be in the future",
        )),
        Some(at) if at > now + max_lifetime => Err(FieldError::new(
            "expires_at",
            "too_far",
            format!("must be at most {} days from now", max_lifetime.num_days()),
        )),
        Some(at) => Ok(Some(at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn scopes_parse_display_and_name_unknown_ones() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
            assert_eq!(scope.to_string(), scope.as_str());
        }
        let scopes = Scopes::parse(&["signals:read", "signals:publish", "signals:read"]).unwrap();
        assert_eq!(scopes.names(), ["signals:publish", "signals:read"]);
        let e = Scopes::parse(&["signals:publish", "signals:write"]).unwrap_err();
        assert_eq!((e.field, e.code), ("scopes", "unknown_scope"));
        assert!(
            e.message.contains("\"signals:write\"") && e.message.contains("devices:read"),
            "{e:?}"
        );
        assert_eq!(Scopes::parse::<&str>(&[]).unwrap_err().code, "required");
        assert!("SIGNALS:PUBLISH".parse::<Scope>().is_err(), "names are exact");
    }

    #[test]
    fn names_are_trimmed_bounded_and_visible() {
        assert_eq!(ApiKeyName::parse("  CI deploy ").unwrap().as_str(), "CI deploy");
        assert_eq!(ApiKeyName::parse("CI").unwrap().key(), "ci");
        assert_eq!(ApiKeyName::parse(" ").unwrap_err().code, "required");
        assert!(ApiKeyName::parse(&"k".repeat(64)).is_ok());
        assert_eq!(ApiKeyName::parse(&"k".repeat(65)).unwrap_err().code, "too_long");
        for bad in ["a\nb", "a\u{202E}b", "a\u{200B}b", "a\u{0000}"] {
            assert_eq!(
                ApiKeyName::parse(bad).unwrap_err().code,
                "invalid_characters",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn allowlists_parse_cidrs_and_match_addresses() {
        let nets = AllowedNetworks::parse(&["203.0.113.0/24", "2001:db8::/32", "198.51.100.7"]).unwrap();
        assert_eq!(
            nets.to_strings(),
            ["203.0.113.0/24", "2001:db8::/32", "198.51.100.7/32"]
        );
        assert!(nets.allows(ip("203.0.113.200")));
        assert!(nets.allows(ip("2001:db8::1")));
        assert!(nets.allows(ip("198.51.100.7")));
        assert!(
            nets.allows(ip("::ffff:203.0.113.9")),
            "IPv4-mapped counts as IPv4"
        );
        assert!(!nets.allows(ip("198.51.100.8")));
        assert!(!nets.allows(ip("192.0.2.1")));
        assert!(
            !nets.allows(None),
            "an unknown client is refused when a list is set"
        );
        assert!(AllowedNetworks::default().allows(None), "no list: anywhere");
        let e = AllowedNetworks::parse(&["10.0.0.1/8"]).unwrap_err();
        assert_eq!(e.code, "host_bits_set");
        assert!(e.message.contains("10.0.0.0/8"), "{e:?}");
        for bad in ["10.0.0.0/33", "nowhere", "", "10.0.0.0/", "::/129"] {
            assert_eq!(
                AllowedNetworks::parse(&[bad]).unwrap_err().code,
                "invalid_cidr",
                "{bad:?}"
            );
        }
        let many: Vec<String> = (0..33).map(|i| format!("10.0.{i}.0/24")).collect();
        assert_eq!(AllowedNetworks::parse(&many).unwrap_err().code, "too_many");
    }

    #[test]
    fn expiry_must_be_in_the_future_and_bounded() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let max = Duration::days(365);
        assert_eq!(parse_expiry(None, now, max), Ok(None));
        assert_eq!(parse_expiry(Some(now), now, max).unwrap_err().code, "in_the_past");
        assert_eq!(
            parse_expiry(Some(now + max + Duration::seconds(1)), now, max)
                .unwrap_err()
                .code,
            "too_far"
        );
        assert_eq!(parse_expiry(Some(now + max), now, max), Ok(Some(now + max)));
    }

    #[test]
    fn secrets_are_redacted_and_show_only_their_prefix() {
        let secret = ApiKeySecret::new("eag_live_AbCdEfGhIjKl".to_owned());
        assert_eq!(format!("{secret:?}"), "ApiKeySecret(<redacted>)");
        assert_eq!(secret.display_prefix(), "eag_live_AbCdEf");
        assert!(ApiKeySecret::looks_like(secret.expose()));
        assert!(!ApiKeySecret::looks_like("eyJhbGciOi"));
    }
}
