//! Device entities and validated values.

use std::fmt;

use chrono::{DateTime, Utc};
use unicode_normalization::UnicodeNormalization;

use crate::account::UserId;
use crate::pagination::Cursor;
use crate::validation::FieldError;

id_newtype!(
    /// A device's id.
    DeviceId
);

/// A device's display name: 1–64 characters after trimming and NFC
/// normalisation; any script, no control characters and no bidirectional
/// overrides (which can make a name display as something else). Unique per
/// owner among active devices, compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceName(String);

impl DeviceName {
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
        if normalized.chars().any(is_forbidden) {
            return Err(FieldError::new(
                Self::FIELD,
                "invalid_characters",
                "must not contain control characters, line separators, bidirectional overrides or \
                 invisible characters (zero-width space, word joiner, soft hyphen)",
            ));
        }
        if !joiners_are_between_visible_characters(&normalized) {
            return Err(FieldError::new(
                Self::FIELD,
                "invalid_characters",
                "a zero-width joiner or non-joiner may only join two visible characters",
            ));
        }
        Ok(Self(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The uniqueness key: the name lower-cased (Unicode-aware), without
    /// zero-width joiners, so names that look the same collide.
    pub fn key(&self) -> String {
        self.0
            .chars()
            .filter(|c| !is_joiner(*c))
            .collect::<String>()
            .to_lowercase()
    }

    /// Rebuilds a name read back from storage.
    pub fn from_trusted(raw: String) -> Self {
        Self(raw)
    }
}

/// Characters a name may never contain: controls, line separators,
/// bidirectional overrides, and invisible characters that only make two
/// names look alike (zero-width space, word joiner and invisible operators,
/// soft hyphen, combining grapheme joiner, Mongolian vowel separator, BOM).
fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{200B}'
                | '\u{2060}'..='\u{2064}'
                | '\u{00AD}'
                | '\u{034F}'
                | '\u{180E}'
        )
}

/// Zero-width joiner and non-joiner: needed inside emoji sequences and some
/// scripts, meaningless anywhere else.
fn is_joiner(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}')
}

fn joiners_are_between_visible_characters(name: &str) -> bool {
    let chars: Vec<char> = name.chars().collect();
    chars.iter().enumerate().all(|(i, c)| {
        !is_joiner(*c)
            || (i > 0
                && i + 1 < chars.len()
                && !is_joiner(chars[i - 1])
                && !is_joiner(chars[i + 1])
                && !chars[i - 1].is_whitespace()
                && !chars[i + 1].is_whitespace())
    })
}

impl fmt::Display for DeviceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a device may authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceStatus {
    Active,
    /// Permanently: a revoked device never authenticates again.
    Revoked,
}

impl DeviceStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Revoked => "revoked",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        match raw {
            "active" => Ok(Self::Active),
            "revoked" => Ok(Self::Revoked),
            _ => Err(FieldError::new(
                "status",
                "invalid",
                "must be `active` or `revoked`",
            )),
        }
    }
}

/// A device secret in clear: `eags_` + 43 base64url characters (256 bits).
/// The HMAC key is exactly these ASCII bytes. Exists in memory only: stored
/// sealed, shown to the owner once. `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceSecret(String);

impl DeviceSecret {
    pub const PREFIX: &'static str = "eags_";

    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DeviceSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceSecret(<redacted>)")
    }
}

/// A short, non-secret identifier of a secret, so an owner can tell which
/// secret an EA holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFingerprint(String);

impl SecretFingerprint {
    pub fn new(fingerprint: String) -> Self {
        Self(fingerprint)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A secret encrypted under a master key (AEAD, bound to its device id).
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// Which master key sealed it.
    pub key_id: String,
    /// Nonce and ciphertext with tag, as the sealer lays them out.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSecret")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// A device as its owner sees it. Never carries a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub id: DeviceId,
    pub owner: UserId,
    pub name: DeviceName,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub last_poll_at: Option<DateTime<Utc>>,
    pub last_ack_at: Option<DateTime<Utc>>,
    pub secret_fingerprint: SecretFingerprint,
    /// The latest heartbeat the EA sent, if any.
    pub last_heartbeat: Option<Heartbeat>,
}

impl Device {
    pub fn status(&self) -> DeviceStatus {
        if self.revoked_at.is_some() {
            DeviceStatus::Revoked
        } else {
            DeviceStatus::Active
        }
    }

    /// The cursor continuing a listing after this device.
    pub fn cursor(&self) -> Cursor {
        Cursor::new(self.created_at, self.id.as_uuid())
    }
}

/// What an EA reports about its terminal in a heartbeat. Every field is
/// optional; what is given is validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Heartbeat {
    pub ea_version: Option<String>,
    pub terminal_build: Option<u32>,
    pub broker: Option<String>,
    pub account_login: Option<u64>,
    pub balance: Option<f64>,
    pub equity: Option<f64>,
    pub received_at: DateTime<Utc>,
}

/// Raw heartbeat fields, as received.
#[derive(Debug, Clone, Default)]
pub struct HeartbeatInput {
    pub ea_version: Option<String>,
    pub terminal_build: Option<i64>,
    pub broker: Option<String>,
    pub account_login: Option<i64>,
    pub balance: Option<f64>,
    pub equity: Option<f64>,
}

impl Heartbeat {
    pub const MAX_VERSION_LEN: usize = 32;
    pub const MAX_BROKER_LEN: usize = 128;
    pub const MAX_TERMINAL_BUILD: i64 = 1_000_000;
    /// Larger than any real account balance, small enough to stay exact
    /// in every client's floating point.
    pub const MAX_MONEY: f64 = 1e15;

    pub fn parse(input: HeartbeatInput, received_at: DateTime<Utc>) -> Result<Self, crate::ValidationErrors> {
        let mut errors = crate::ValidationErrors::new();
        let text =
            |value: Option<String>, field: &'static str, max: usize, errors: &mut crate::ValidationErrors| {
                let value = value?;
                let trimmed = value.trim();
                if trimmed.chars().count() > max {
                    errors.push(FieldError::new(
                        field,
                        "too_long",
                        format!("must be at most {max} characters"),
                    ));
                    None
                } else if trimmed.chars().any(char::is_control) {
                    errors.push(FieldError::new(
                        field,
                        "invalid_characters",
                        "must not contain control characters",
                    ));
                    None
                } else {
                    Some(trimmed.to_owned())
                }
            };
        let ea_version = text(input.ea_version, "ea_version", Self::MAX_VERSION_LEN, &mut errors);
        let broker = text(input.broker, "broker", Self::MAX_BROKER_LEN, &mut errors);
        let terminal_build = match input.terminal_build {
            Some(b) if (0..=Self::MAX_TERMINAL_BUILD).contains(&b) => u32::try_from(b).ok(),
            Some(_) => {
                errors.push(FieldError::new(
                    "terminal_build",
                    "out_of_range",
                    format!("must be from 0 to {}", Self::MAX_TERMINAL_BUILD),
                ));
                None
            }
            None => None,
        };
        let account_login = match input.account_login {
            Some(l) if l >= 0 => u64::try_from(l).ok(),
            Some(_) => {
                errors.push(FieldError::new(
                    "account_login",
                    "out_of_range",
                    "must not be negative",
                ));
                None
            }
            None => None,
        };
        let mut money = |value: Option<f64>, field: &'static str| match value {
            Some(v) if v.is_finite() && v.abs() <= Self::MAX_MONEY => Some(v),
            Some(_) => {
                errors.push(FieldError::new(
                    field,
                    "out_of_range",
                    "must be a finite number of at most 1e15 in magnitude",
                ));
                None
            }
            None => None,
        };
        let balance = money(input.balance, "balance");
        let equity = money(input.equity, "equity");
        errors.into_result()?;
        Ok(Self {
            ea_version,
            terminal_build,
            broker,
            account_login,
            balance,
            equity,
            received_at,
        })
    }
}

/// What registering a device stores.
#[derive(Debug, Clone)]
pub struct NewDevice {
    pub id: DeviceId,
    pub owner: UserId,
    pub name: DeviceName,
    pub secret: SealedSecret,
    pub fingerprint: SecretFingerprint,
    pub created_at: DateTime<Utc>,
}

/// A new secret replacing the current one.
#[derive(Debug, Clone)]
pub struct SecretRotation {
    pub secret: SealedSecret,
    pub fingerprint: SecretFingerprint,
    /// Until when the replaced secret still authenticates; `None` retires
    /// it at once.
    pub previous_valid_until: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

/// A device and the secret it was just given: the only time a secret
/// leaves the server.
#[derive(Debug, Clone)]
pub struct DeviceWithSecret {
    pub device: Device,
    pub secret: DeviceSecret,
}

/// The sealed secrets of one device, for master-key rotation.
#[derive(Debug, Clone)]
pub struct StoredSecrets {
    pub device: DeviceId,
    pub current: SealedSecret,
    pub previous: Option<SealedSecret>,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn names_are_trimmed_normalised_and_bounded() {
        assert_eq!(
            DeviceName::parse("  EURUSD scalper  ").unwrap().as_str(),
            "EURUSD scalper"
        );
        assert_eq!(DeviceName::parse("Cafe\u{301}").unwrap().as_str(), "Café");
        assert!(DeviceName::parse(&"n".repeat(64)).is_ok());
        assert!(DeviceName::parse(&format!("  {}  ", "n".repeat(64))).is_ok());
        assert_eq!(DeviceName::parse(&"n".repeat(65)).unwrap_err().code, "too_long");
        assert_eq!(DeviceName::parse("").unwrap_err().code, "required");
        assert_eq!(DeviceName::parse(" \t\n ").unwrap_err().code, "required");
        assert!(DeviceName::parse("🚀 rocket").is_ok());
        assert!(DeviceName::parse("حساب التداول").is_ok());
        assert!(DeviceName::parse("x'; DROP TABLE devices;--").is_ok());
        for bad in [
            "a\0b",
            "a\u{7}b",
            "line\nbreak",
            "a\u{202E}b",
            "a\u{2028}b",
            "a\u{85}b",
        ] {
            assert_eq!(
                DeviceName::parse(bad).unwrap_err().code,
                "invalid_characters",
                "{bad:?}"
            );
        }
    }

    /// Decision (issue 12): invisible characters make look-alike names, so
    /// they are refused, except joiners that join two visible characters
    /// (emoji sequences, Persian and Indic scripts), which the uniqueness key
    /// ignores.
    #[test]
    fn invisible_characters_cannot_make_look_alike_names() {
        for bad in [
            "London\u{200B}VPS",
            "\u{2060}EA",
            "EA\u{00AD}1",
            "EA\u{FEFF}",
            "\u{200D}EA",
            "EA\u{200D}",
            "E\u{200D}\u{200D}A",
            "EA \u{200C}1",
        ] {
            assert_eq!(
                DeviceName::parse(bad).map_err(|e| e.code),
                Err("invalid_characters"),
                "{bad:?}"
            );
        }
        let family = DeviceName::parse("Family 👨\u{200D}👩\u{200D}👧").unwrap();
        assert_eq!(family.key(), "family 👨👩👧");
        assert!(DeviceName::parse("می\u{200C}خواهم").is_ok(), "Persian with ZWNJ");
        assert_eq!(
            DeviceName::parse("E\u{200D}A").unwrap().key(),
            DeviceName::parse("ea").unwrap().key(),
            "a joiner does not make a name unique"
        );
    }

    #[test]
    fn uniqueness_key_ignores_case() {
        assert_eq!(
            DeviceName::parse("MT5-Main").unwrap().key(),
            DeviceName::parse("mt5-main").unwrap().key()
        );
        assert_eq!(DeviceName::parse("ÄLPHA").unwrap().key(), "älpha");
    }

    #[test]
    fn secrets_and_sealed_secrets_are_redacted() {
        let s = DeviceSecret::new("eags_topsecret".into());
        assert!(!format!("{s:?}").contains("topsecret"));
        let sealed = SealedSecret {
            key_id: "k1".into(),
            ciphertext: vec![1, 2, 3],
        };
        assert!(!format!("{sealed:?}").contains("[1, 2, 3]"));
    }

    #[test]
    fn heartbeats_are_validated_field_by_field() {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let ok = Heartbeat::parse(
            HeartbeatInput {
                ea_version: Some(" 2.1.0 ".into()),
                terminal_build: Some(4410),
                broker: Some("Société Générale".into()),
                account_login: Some(12_345_678),
                balance: Some(10_000.5),
                equity: Some(-3.25),
            },
            at,
        )
        .unwrap();
        assert_eq!(ok.ea_version.as_deref(), Some("2.1.0"));
        assert_eq!(ok.terminal_build, Some(4410));
        assert!(Heartbeat::parse(HeartbeatInput::default(), at).is_ok());
        let errors = Heartbeat::parse(
            HeartbeatInput {
                ea_version: Some("v".repeat(33)),
                terminal_build: Some(-1),
                broker: Some("bad\nbroker".into()),
                account_login: Some(-5),
                balance: Some(f64::NAN),
                equity: Some(1e16),
            },
            at,
        )
        .unwrap_err();
        let fields: Vec<_> = errors.errors().iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "ea_version",
                "broker",
                "terminal_build",
                "account_login",
                "balance",
                "equity"
            ]
        );
    }

    proptest! {
        #[test]
        fn accepted_names_obey_the_rules(s in "\\PC{0,80}") {
            if let Ok(name) = DeviceName::parse(&s) {
                let n = name.as_str();
                prop_assert!((1..=64).contains(&n.chars().count()));
                prop_assert_eq!(n, n.trim());
                prop_assert!(!n.chars().any(char::is_control));
            }
        }
    }
}

/// What the hot path needs to know about a device.
#[derive(Debug, Clone)]
pub struct DeviceCredentials {
    pub id: DeviceId,
    pub owner: UserId,
    pub name: DeviceName,
    pub revoked: bool,
    pub current: SealedSecret,
    /// The secret replaced by the last rotation and until when it works.
    pub previous: Option<(SealedSecret, DateTime<Utc>)>,
    /// Changes whenever the device's effective trading configuration may
    /// have (its document or the account default): cached with the
    /// credentials, so a poll tells the EA to refetch without a query.
    pub config_revision: i64,
    /// Changes whenever a deployment's record of the device changes
    /// (created, its wave started, ended, reported): cached likewise, so a
    /// poll tells the EA to look at its deployment without a query.
    pub deployment_revision: i64,
}
