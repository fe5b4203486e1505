//! Account entities and validated values.

use std::fmt;

use chrono::{DateTime, Utc};
use unicode_normalization::UnicodeNormalization;

use crate::validation::{FieldError, ValidationErrors};

id_newtype!(
    /// A user account's id.
    UserId
);
id_newtype!(
    /// A login session's id: one refresh-token family.
    SessionId
);

/// A username: 3–32 characters of `[A-Za-z0-9_.-]`. Unique case-insensitively;
/// the spelling the user chose is kept for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 32;
    pub const FIELD: &'static str = "username";

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let len = raw.chars().count();
        if len < Self::MIN_LEN {
            return Err(FieldError::new(
                Self::FIELD,
                "too_short",
                format!("must be at least {} characters", Self::MIN_LEN),
            ));
        }
        if len > Self::MAX_LEN {
            return Err(FieldError::new(
                Self::FIELD,
                "too_long",
                format!("must be at most {} characters", Self::MAX_LEN),
            ));
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(FieldError::new(
                Self::FIELD,
                "invalid_characters",
                "may contain only letters A-Z and a-z, digits, '_', '.' and '-'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuilds a username read back from storage, where it was validated on
    /// the way in.
    pub fn from_trusted(raw: String) -> Self {
        Self(raw)
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address, syntactically valid per RFC 5321/5322 (no quoted or
/// IP-literal forms), at most 254 characters, stored lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;
    pub const FIELD: &'static str = "email";

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let invalid = || FieldError::new(Self::FIELD, "invalid", "must be a valid email address");
        if raw.is_empty() {
            return Err(FieldError::new(Self::FIELD, "required", "must not be empty"));
        }
        if raw.len() > Self::MAX_LEN {
            return Err(FieldError::new(
                Self::FIELD,
                "too_long",
                format!("must be at most {} characters", Self::MAX_LEN),
            ));
        }
        // Reject the exotic forms the parser accepts but no mail flow for an
        // account needs (quoted local parts, IP literals, display names).
        if raw
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '[' | ']' | '<' | '>'))
        {
            return Err(invalid());
        }
        let lower = raw.to_lowercase();
        let parsed = email_address::EmailAddress::parse_with_options(
            &lower,
            email_address::Options::default()
                .without_display_text()
                .without_domain_literal(),
        )
        .map_err(|_| invalid())?;
        // A domain must have at least one dot (no `user@localhost` accounts).
        if !parsed.domain().contains('.') || parsed.domain().ends_with('.') {
            return Err(invalid());
        }
        Ok(Self(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuilds an email read back from storage.
    pub fn from_trusted(raw: String) -> Self {
        Self(raw)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A plaintext password that satisfies the policy: 12–128 characters after
/// NFC normalisation (so the same password typed on two keyboards that
/// compose characters differently is the same password). Any Unicode allowed.
/// Never printed: `Debug` is redacted and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN_LEN: usize = 12;
    pub const MAX_LEN: usize = 128;

    /// Checks the policy for a new password given in `field`.
    /// A new password (registration, password change): 12–128 characters
    /// after NFC normalisation, not a common or trivial password, and not
    /// containing any of the account's `names` (username, email).
    pub fn parse_new(raw: &str, field: &'static str, names: &[&str]) -> Result<Self, FieldError> {
        let normalized: String = raw.nfc().collect();
        let len = normalized.chars().count();
        if len < Self::MIN_LEN {
            return Err(FieldError::new(
                field,
                "too_short",
                format!("must be at least {} characters", Self::MIN_LEN),
            ));
        }
        if len > Self::MAX_LEN {
            return Err(FieldError::new(
                field,
                "too_long",
                format!("must be at most {} characters", Self::MAX_LEN),
            ));
        }
        if let Some(why) = super::common::weakness(&normalized, names) {
            return Err(FieldError::new(
                field,
                "too_common",
                format!("{why}: choose another (a few unrelated words make a strong password)"),
            ));
        }
        Ok(Self(normalized))
    }

    /// A password offered to prove identity (login, confirmation). The policy
    /// is not applied, so a future policy change cannot lock anyone out; only
    /// emptiness and a hard size cap (bounding hashing work) are checked.
    pub fn parse_candidate(raw: &str, field: &'static str) -> Result<Self, FieldError> {
        if raw.is_empty() {
            return Err(FieldError::new(field, "required", "must not be empty"));
        }
        if raw.len() > 4 * Self::MAX_LEN {
            return Err(FieldError::new(
                field,
                "too_long",
                format!("must be at most {} characters", Self::MAX_LEN),
            ));
        }
        Ok(Self(raw.nfc().collect()))
    }

    /// The bytes to hash. Only password hashers should call this.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A password hash in PHC string format (`$argon2id$v=19$m=...`), opaque to
/// the domain.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn new(phc: String) -> Self {
        Self(phc)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// A user account, as shown to its owner. Never carries the password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub email: Email,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A user together with the hash needed to check their password.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    pub user: User,
    pub password_hash: PasswordHash,
    /// An administrator disabled the account: the password may be right,
    /// but no session is opened.
    pub disabled: bool,
}

/// What a registration stores.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: UserId,
    pub username: Username,
    pub email: Email,
    pub password_hash: PasswordHash,
    pub created_at: DateTime<Utc>,
}

/// Validated registration input.
#[derive(Debug, Clone)]
pub struct Registration {
    pub email: Email,
    pub username: Username,
    pub password: Password,
}

impl Registration {
    /// Validates every field and reports all failures together.
    pub fn parse(email: &str, username: &str, password: &str) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let email_raw = email;
        let username_raw = username;
        let email = errors.collect(Email::parse(email_raw));
        let username = errors.collect(Username::parse(username_raw));
        let password = errors.collect(Password::parse_new(
            password,
            "password",
            &[username_raw, email_raw],
        ));
        match (email, username, password) {
            (Some(email), Some(username), Some(password)) => Ok(Self {
                email,
                username,
                password,
            }),
            _ => Err(errors),
        }
    }
}

/// How a user names themself at login: by email when it contains `@`,
/// otherwise by username (case-insensitive either way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginId {
    Email(Email),
    Username(Username),
}

impl LoginId {
    /// `None` when the text can be neither; such a login can never succeed,
    /// and callers must answer exactly as for a wrong password.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.contains('@') {
            Email::parse(raw).ok().map(Self::Email)
        } else {
            Username::parse(raw).ok().map(Self::Username)
        }
    }
}

/// Validated login input.
#[derive(Debug, Clone)]
pub struct LoginAttempt {
    /// `None` when the login text cannot name any account.
    pub login: Option<LoginId>,
    pub password: Password,
}

impl LoginAttempt {
    pub const MAX_LOGIN_LEN: usize = Email::MAX_LEN;

    pub fn parse(login: &str, password: &str) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if login.is_empty() {
            errors.push(FieldError::new("login", "required", "must not be empty"));
        } else if login.chars().count() > Self::MAX_LOGIN_LEN {
            errors.push(FieldError::new(
                "login",
                "too_long",
                format!("must be at most {} characters", Self::MAX_LOGIN_LEN),
            ));
        }
        let password = errors.collect(Password::parse_candidate(password, "password"));
        errors.into_result()?;
        let password = password.ok_or_else(ValidationErrors::new)?;
        Ok(Self {
            login: LoginId::parse(login),
            password,
        })
    }
}

/// An opaque refresh token as handed to the client. Redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

impl RefreshToken {
    pub fn new(token: String) -> Self {
        Self(token)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(<redacted>)")
    }
}

/// The one-way digest under which a refresh token is stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RefreshTokenHash(Vec<u8>);

impl RefreshTokenHash {
    pub fn new(digest: Vec<u8>) -> Self {
        Self(digest)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A signed access token (JWT). Redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    pub fn new(token: String) -> Self {
        Self(token)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// What an access token asserts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The result of a login or a refresh.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access_token: AccessToken,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_token: RefreshToken,
    pub refresh_expires_at: DateTime<Utc>,
}

/// A login session (one refresh-token family).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Session {
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationReason {
    Logout,
    PasswordChanged,
    /// A refresh token was presented after it had already been rotated:
    /// someone holds a copy, so the whole family is burnt.
    RefreshTokenReuse,
}

impl RevocationReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::PasswordChanged => "password_changed",
            Self::RefreshTokenReuse => "refresh_token_reuse",
        }
    }
}

/// A refresh token to store.
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    pub hash: RefreshTokenHash,
    pub session_id: SessionId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A stored refresh token and the state of its session.
#[derive(Debug, Clone)]
pub struct RefreshTokenRecord {
    pub session: Session,
    pub expires_at: DateTime<Utc>,
    /// Set once the token has been exchanged for a new one.
    pub rotated_at: Option<DateTime<Utc>>,
    /// An administrator disabled the session's account.
    pub account_disabled: bool,
}

/// The caller behind a verified access token with a live session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthenticatedUser {
    pub user_id: UserId,
    pub session_id: SessionId,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn username_accepts_boundaries_and_rejects_outside() {
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse(&"a".repeat(32)).is_ok());
        assert_eq!(Username::parse("ab").unwrap_err().code, "too_short");
        assert_eq!(Username::parse(&"a".repeat(33)).unwrap_err().code, "too_long");
        assert_eq!(Username::parse("a b c").unwrap_err().code, "invalid_characters");
        assert_eq!(Username::parse("héllo").unwrap_err().code, "invalid_characters");
        assert_eq!(Username::parse("a\0bc").unwrap_err().code, "invalid_characters");
        assert!(Username::parse("Trader_1.x-y").is_ok());
    }

    #[test]
    fn email_is_lowercased_and_validated() {
        assert_eq!(
            Email::parse("Alice@Example.COM").unwrap().as_str(),
            "alice@example.com"
        );
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "alice@localhost",
            "alice@@example.com",
            "alice @example.com",
            "Alice <alice@example.com>",
            "alice@[127.0.0.1]",
            "\"a b\"@example.com",
            "alice@example.com\n",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long).unwrap_err().code, "too_long");
    }

    #[test]
    fn password_policy_counts_characters_after_nfc() {
        assert!(Password::parse_new("correct horse", "password", &[]).is_ok());
        assert_eq!(
            Password::parse_new("short", "password", &[]).unwrap_err().code,
            "too_short"
        );
        // 12 user-perceived characters given as 24 code points (e + combining
        // acute): NFC composes them to 12 characters.
        // 13 code points, 11 characters once the accents are composed.
        let decomposed = "se\u{301}ance ole\u{301}!";
        assert_eq!(decomposed.chars().count(), 13);
        assert_eq!(
            Password::parse_new(decomposed, "password", &[]).unwrap_err().code,
            "too_short",
            "counted after NFC"
        );
        let p = Password::parse_new(&format!("{decomposed} ok"), "password", &[]).unwrap();
        assert_eq!(p.expose(), "séance olé! ok".as_bytes());
        assert!(Password::parse_new(&"密文安全".repeat(32), "password", &[]).is_ok());
        assert_eq!(
            Password::parse_new(&"密".repeat(129), "password", &[])
                .unwrap_err()
                .code,
            "too_long"
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let p = Password::parse_new("correct horse battery", "password", &[]).unwrap();
        assert!(!format!("{p:?}").contains("horse"));
        let t = RefreshToken::new("tok-secret".into());
        assert!(!format!("{t:?}").contains("tok-secret"));
        let a = AccessToken::new("jwt-secret".into());
        assert!(!format!("{a:?}").contains("jwt-secret"));
        let h = PasswordHash::new("$argon2id$secret".into());
        assert!(!format!("{h:?}").contains("argon2id"));
    }

    #[test]
    fn registration_reports_every_failing_field() {
        let errors = Registration::parse("nope", "x", "short").unwrap_err();
        let fields: Vec<_> = errors.errors().iter().map(|e| e.field).collect();
        assert_eq!(fields, ["email", "username", "password"]);
    }

    #[test]
    fn login_id_picks_email_or_username() {
        assert_eq!(
            LoginId::parse("Bob@Example.com"),
            Some(LoginId::Email(Email::parse("bob@example.com").unwrap()))
        );
        assert!(matches!(LoginId::parse("bob_1"), Some(LoginId::Username(_))));
        assert_eq!(LoginId::parse("no such thing!"), None);
    }

    proptest! {
        #[test]
        fn username_parse_accepts_exactly_the_charset(s in "\\PC{0,40}") {
            let expected = (3..=32).contains(&s.chars().count())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            prop_assert_eq!(Username::parse(&s).is_ok(), expected);
        }

        #[test]
        fn email_parse_never_panics_and_lowercases(s in "\\PC{0,80}") {
            if let Ok(e) = Email::parse(&s) {
                prop_assert_eq!(e.as_str(), s.to_lowercase());
                prop_assert!(e.as_str().contains('@'));
            }
        }

        #[test]
        fn password_length_rule_holds(s in "\\PC{0,140}") {
            let n: String = s.nfc().collect();
            let expected = (12..=128).contains(&n.chars().count())
                && super::super::common::weakness(&n, &[]).is_none();
            prop_assert_eq!(Password::parse_new(&s, "password", &[]).is_ok(), expected);
        }
    }
}
