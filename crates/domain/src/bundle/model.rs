//! Bundles and their validated parts.

use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, Utc};

use crate::account::UserId;
use crate::pagination::Cursor;
use crate::validation::FieldError;

id_newtype!(
    /// A bundle's id.
    BundleId
);

/// The size of the chunks an upload is stored in (the last may be smaller).
pub const CHUNK_BYTES: usize = 256 * 1024;

/// How long an upload may stay incomplete before another upload of the
/// same name and version replaces it, or the periodic sweep drops it (one
/// that never completes was cut off by a crash or a vanished client). The
/// upload deadline (`EAGATE_BUNDLE_UPLOAD_TIMEOUT_SECONDS`) is kept below
/// it, so no live upload is ever taken for abandoned.
pub const STALE_UPLOAD: chrono::Duration = chrono::Duration::hours(1);

/// The longest upload deadline a server may be configured with: ten
/// minutes below [`STALE_UPLOAD`], so the sweep never meets a live upload
/// (the last chunk and the completion come after the deadline's check).
pub const MAX_UPLOAD_DEADLINE_SECONDS: u64 = 3000;
const _: () = assert!(
    MAX_UPLOAD_DEADLINE_SECONDS + 600 <= STALE_UPLOAD.num_seconds() as u64,
    "an upload's deadline must stay well below the age at which the sweep drops it"
);

/// The largest bundle the server accepts unless configured otherwise.
pub const DEFAULT_MAX_BYTES: u64 = 20 * 1024 * 1024;

/// How many bytes of bundles (completed and being uploaded) one owner may
/// store unless configured otherwise: 1 GiB.
pub const DEFAULT_MAX_STORED_BYTES: u64 = 1024 * 1024 * 1024;

/// A bundle's name: 1 to 64 characters, ASCII letters, digits, `.`, `_`
/// and `-`, starting with a letter or digit (e.g. `TrendFollower`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BundleName(String);

impl BundleName {
    pub const MAX: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        if raw.is_empty() || raw.len() > Self::MAX {
            return Err(FieldError::new(
                "name",
                "invalid_length",
                format!("must be 1 to {} characters", Self::MAX),
            ));
        }
        let valid = raw.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !valid {
            return Err(FieldError::new(
                "name",
                "invalid_characters",
                "may contain only ASCII letters, digits, '.', '_' and '-', and must start with a letter or digit",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A semantic version (semver.org 2.0.0): `MAJOR.MINOR.PATCH`, an optional
/// `-pre.release` and `+build` metadata, without leading zeros in numbers;
/// at most 64 characters. Kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BundleVersion {
    text: String,
    core: [u64; 3],
}

fn semver_error() -> FieldError {
    FieldError::new(
        "version",
        "invalid_semver",
        "must be a semantic version such as 1.4.2 or 2.0.0-rc.1 (semver.org)",
    )
}

fn identifiers_valid(part: &str, numeric_rule: bool) -> bool {
    part.split('.').all(|id| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !(numeric_rule
                && id.len() > 1
                && id.starts_with('0')
                && id.bytes().all(|b| b.is_ascii_digit()))
    })
}

impl BundleVersion {
    pub const MAX: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        if raw.is_empty() || raw.len() > Self::MAX {
            return Err(semver_error());
        }
        let (rest, build) = match raw.split_once('+') {
            Some((rest, build)) => (rest, Some(build)),
            None => (raw, None),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (rest, None),
        };
        let numbers: Vec<&str> = core.split('.').collect();
        if numbers.len() != 3 {
            return Err(semver_error());
        }
        let mut parsed = [0u64; 3];
        for (slot, n) in parsed.iter_mut().zip(&numbers) {
            let digits = !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
            if !digits || (n.len() > 1 && n.starts_with('0')) {
                return Err(semver_error());
            }
            *slot = n.parse().map_err(|_| semver_error())?;
        }
        if pre.is_some_and(|p| !identifiers_valid(p, true))
            || build.is_some_and(|b| !identifiers_valid(b, false))
        {
            return Err(semver_error());
        }
        Ok(Self {
            text: raw.to_owned(),
            core: parsed,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `reported` (e.g. an EA's heartbeat `ea_version`) names this
    /// version exactly, build metadata included: `2.1.0+b7` and `2.1.0+b8`
    /// are different builds.
    pub fn matches(&self, reported: &str) -> bool {
        reported.trim() == self.text
    }

    /// Precedence of the `MAJOR.MINOR.PATCH` parts.
    pub fn core_cmp(&self, other: &Self) -> Ordering {
        self.core.cmp(&other.core)
    }
}

impl fmt::Display for BundleVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Release notes: at most 4096 characters, no control characters other
/// than newlines and tabs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReleaseNotes(String);

impl ReleaseNotes {
    pub const MAX: usize = 4096;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        if raw.chars().count() > Self::MAX {
            return Err(FieldError::new(
                "notes",
                "too_long",
                format!("must be at most {} characters", Self::MAX),
            ));
        }
        if raw
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
        {
            return Err(FieldError::new(
                "notes",
                "invalid_characters",
                "must not contain control characters other than newlines and tabs",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A SHA-256 digest as 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sha256Hex(String);

impl Sha256Hex {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        if raw.len() == 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::new(
                "sha256",
                "invalid",
                "must be 64 lowercase hex digits",
            ))
        }
    }

    /// From the digest's 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(eagate_protocol::hex(bytes))
    }

    /// The digest's 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = u8::from_str_radix(&self.0[2 * i..2 * i + 2], 16).unwrap_or(0);
        }
        out
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An upload about to begin.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBundle {
    pub id: BundleId,
    pub owner: UserId,
    pub name: BundleName,
    pub version: BundleVersion,
    pub notes: ReleaseNotes,
    pub created_at: DateTime<Utc>,
}

/// A completed bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    pub id: BundleId,
    pub owner: UserId,
    pub name: BundleName,
    pub version: BundleVersion,
    pub notes: ReleaseNotes,
    pub size: u64,
    pub sha256: Sha256Hex,
    pub created_at: DateTime<Utc>,
}

impl Bundle {
    pub fn cursor(&self) -> Cursor {
        Cursor::new(self.created_at, self.id.as_uuid())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn semantic_versions_follow_semver_org() {
        for ok in [
            "0.0.0",
            "1.4.2",
            "10.20.30",
            "2.0.0-rc.1",
            "1.0.0-alpha-a.b-c",
            "1.0.0+build.5",
            "1.0.0-0.3.7+exp.sha.5114f85",
        ] {
            assert!(BundleVersion::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.02.3",
            "1.2.03",
            "v1.2.3",
            "1.2.3-",
            "1.2.3-01",
            "1.2.3+",
            "1.2.3-a..b",
            "1.2.3 ",
            "1.2.x",
            "-1.2.3",
            "1.2.3-é",
        ] {
            assert_eq!(
                BundleVersion::parse(bad).map_err(|e| e.code),
                Err("invalid_semver"),
                "{bad:?}"
            );
        }
        assert!(BundleVersion::parse(&format!("1.2.3-{}", "a".repeat(60))).is_err());
    }

    #[test]
    fn an_ea_version_matches_exactly_build_metadata_included() {
        let v = BundleVersion::parse("2.1.0+b7").unwrap();
        assert!(v.matches("2.1.0+b7") && v.matches(" 2.1.0+b7 "));
        assert!(!v.matches("2.1.0") && !v.matches("2.1.0+b8"));
        assert!(!v.matches("2.1.1") && !v.matches("2.1.0-rc.1"));
    }

    #[test]
    fn names_and_notes_are_validated() {
        assert!(BundleName::parse("Trend_Follower-2.ex5").is_ok());
        for bad in ["", ".hidden", "a b", "ü", &"a".repeat(65)] {
            assert!(BundleName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ReleaseNotes::parse("fixes\n\t- sizing").is_ok());
        assert_eq!(
            ReleaseNotes::parse("bell\u{7}").unwrap_err().code,
            "invalid_characters"
        );
        assert_eq!(
            ReleaseNotes::parse(&"x".repeat(4097)).unwrap_err().code,
            "too_long"
        );
    }

    #[test]
    fn digests_round_trip_through_bytes() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i * 7) as u8);
        let hex = Sha256Hex::from_bytes(&bytes);
        assert_eq!(Sha256Hex::parse(hex.as_str()), Ok(hex.clone()));
        assert_eq!(hex.to_bytes(), bytes);
        assert!(Sha256Hex::parse(&"A".repeat(64)).is_err());
    }

    proptest! {
        #[test]
        fn every_generated_version_parses_and_keeps_its_text(
            major in 0u64..1000, minor in 0u64..1000, patch in 0u64..1000,
            pre in proptest::option::of("[a-z][a-z0-9]{0,5}(\\.[1-9][0-9]{0,3})?"),
        ) {
            let text = match &pre {
                Some(p) => format!("{major}.{minor}.{patch}-{p}"),
                None => format!("{major}.{minor}.{patch}"),
            };
            let v = BundleVersion::parse(&text).unwrap();
            prop_assert_eq!(v.as_str(), text.as_str());
            prop_assert_eq!(v.core, [major, minor, patch]);
        }

        #[test]
        fn parsing_never_panics(raw in "\\PC{0,80}") {
            let _ = BundleVersion::parse(&raw);
            let _ = BundleName::parse(&raw);
        }
    }
}
