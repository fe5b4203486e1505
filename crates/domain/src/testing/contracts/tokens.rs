//! The [`AccessTokenIssuer`] and [`RefreshTokenFactory`] contracts. What
//! only real cryptography can show (a foreign key's signature, the pinned
//! algorithm, entropy) is the adapter's own tests.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::fixtures::t0;
use crate::account::*;

fn claims(issued_at: DateTime<Utc>, lifetime: Duration) -> AccessClaims {
    AccessClaims {
        user_id: UserId::from_uuid(Uuid::now_v7()),
        session_id: SessionId::from_uuid(Uuid::now_v7()),
        issued_at,
        expires_at: issued_at + lifetime,
    }
}

fn issue(issuer: &impl AccessTokenIssuer, claims: &AccessClaims) -> String {
    issuer
        .issue(claims)
        .expect("issuing a token must succeed")
        .expose()
        .to_owned()
}

/// `token` with the character at `at` replaced by another one.
fn with_char_replaced(token: &str, at: usize) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let i = at.min(chars.len() - 1);
    // Keep separators, so the shape stays plausible.
    let i = if chars[i] == '.' { i.saturating_sub(1) } else { i };
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

pub async fn an_issued_token_verifies_to_its_claims(issuer: &impl AccessTokenIssuer) {
    let c = claims(t0(), Duration::minutes(15));
    let token = issue(issuer, &c);
    for now in [
        t0(),
        t0() + Duration::minutes(1),
        t0() + Duration::minutes(15) - Duration::seconds(1),
    ] {
        assert_eq!(
            issuer.verify(&token, now),
            Ok(c.clone()),
            "a token must verify, to exactly its claims, at any time within its lifetime ({now})"
        );
    }
}

pub async fn an_expired_token_is_refused(issuer: &impl AccessTokenIssuer) {
    let c = claims(t0(), Duration::minutes(15));
    let token = issue(issuer, &c);
    for now in [
        c.expires_at,
        c.expires_at + Duration::seconds(1),
        c.expires_at + Duration::days(1),
    ] {
        assert_eq!(
            issuer.verify(&token, now),
            Err(InvalidAccessToken),
            "a token must be refused from its expiry on ({now})"
        );
    }
}

pub async fn a_token_issued_in_the_future_is_refused(issuer: &impl AccessTokenIssuer) {
    let c = claims(t0() + Duration::hours(1), Duration::minutes(15));
    let token = issue(issuer, &c);
    assert_eq!(
        issuer.verify(&token, t0()),
        Err(InvalidAccessToken),
        "a token issued an hour after `now` must be refused"
    );
}

pub async fn a_tampered_token_is_refused(issuer: &impl AccessTokenIssuer) {
    let c = claims(t0(), Duration::minutes(15));
    let token = issue(issuer, &c);
    let now = t0() + Duration::minutes(1);
    let len = token.chars().count();
    for at in [len / 4, len / 2, len * 3 / 4] {
        let tampered = with_char_replaced(&token, at);
        assert_ne!(tampered, token, "setting up: the token changed");
        assert_eq!(
            issuer.verify(&tampered, now),
            Err(InvalidAccessToken),
            "a token with one character changed (at {at} of {len}) must be refused"
        );
    }
    let truncated: String = token.chars().take(len - 1).collect();
    assert_eq!(
        issuer.verify(&truncated, now),
        Err(InvalidAccessToken),
        "a truncated token must be refused"
    );
    assert_eq!(
        issuer.verify(&format!("{token}A"), now),
        Err(InvalidAccessToken),
        "a token with a character appended must be refused"
    );
}

pub async fn garbage_is_refused(issuer: &impl AccessTokenIssuer) {
    let now = t0();
    for garbage in [
        "",
        "garbage",
        "a.b.c",
        "....",
        "eyJhbGciOiJub25lIn0.e30.",
        "\u{0}",
    ] {
        assert_eq!(
            issuer.verify(garbage, now),
            Err(InvalidAccessToken),
            "{garbage:?} must be refused (not panic)"
        );
    }
}

/// Runs every access-token rule in order; prefer
/// [`access_token_issuer_contract!`](crate::access_token_issuer_contract),
/// which gives each rule a test of its own.
pub async fn access_token_issuer_contract(issuer: &impl AccessTokenIssuer) {
    an_issued_token_verifies_to_its_claims(issuer).await;
    an_expired_token_is_refused(issuer).await;
    a_token_issued_in_the_future_is_refused(issuer).await;
    a_tampered_token_is_refused(issuer).await;
    garbage_is_refused(issuer).await;
}

/// One `#[tokio::test]` per [`AccessTokenIssuer`] rule, in a module
/// `access_token_issuer_contract`. `$setup`: an async block returning
/// `(guard, issuer)`.
#[macro_export]
macro_rules! access_token_issuer_contract {
    ($setup:expr) => {
        $crate::__contract_cases!(
            access_token_issuer_contract,
            tokens,
            $setup,
            (issuer),
            [
                an_issued_token_verifies_to_its_claims,
                an_expired_token_is_refused,
                a_token_issued_in_the_future_is_refused,
                a_tampered_token_is_refused,
                garbage_is_refused,
            ]
        );
    };
}

fn generate(factory: &impl RefreshTokenFactory) -> String {
    factory
        .generate()
        .expect("generating a refresh token must succeed")
        .expose()
        .to_owned()
}

pub async fn generated_refresh_tokens_are_distinct(factory: &impl RefreshTokenFactory) {
    let tokens: std::collections::HashSet<String> = (0..32).map(|_| generate(factory)).collect();
    assert_eq!(tokens.len(), 32, "32 generated tokens must all differ");
}

pub async fn a_digest_is_the_same_for_the_same_token(factory: &impl RefreshTokenFactory) {
    let token = generate(factory);
    assert_eq!(
        factory.digest(&token),
        factory.digest(&token.clone()),
        "the digest of a token must not change (it is how the token is found)"
    );
}

pub async fn distinct_tokens_have_distinct_digests(factory: &impl RefreshTokenFactory) {
    let digests: std::collections::HashSet<RefreshTokenHash> =
        (0..32).map(|_| factory.digest(&generate(factory))).collect();
    assert_eq!(
        digests.len(),
        32,
        "32 distinct tokens must have 32 distinct digests"
    );
    assert_ne!(
        factory.digest("token-a"),
        factory.digest("token-b"),
        "any two different strings must digest differently"
    );
}

pub async fn a_digest_does_not_contain_the_token(factory: &impl RefreshTokenFactory) {
    let token = generate(factory);
    let digest = factory.digest(&token);
    let needle = token.as_bytes();
    assert!(
        !digest.as_bytes().windows(needle.len()).any(|w| w == needle),
        "a stored digest must not contain the token it stands for"
    );
}

/// Runs every refresh-token rule in order; prefer
/// [`refresh_token_factory_contract!`](crate::refresh_token_factory_contract),
/// which gives each rule a test of its own.
pub async fn refresh_token_factory_contract(factory: &impl RefreshTokenFactory) {
    generated_refresh_tokens_are_distinct(factory).await;
    a_digest_is_the_same_for_the_same_token(factory).await;
    distinct_tokens_have_distinct_digests(factory).await;
    a_digest_does_not_contain_the_token(factory).await;
}

/// One `#[tokio::test]` per [`RefreshTokenFactory`] rule, in a module
/// `refresh_token_factory_contract`. `$setup`: an async block returning
/// `(guard, factory)`.
#[macro_export]
macro_rules! refresh_token_factory_contract {
    ($setup:expr) => {
        $crate::__contract_cases!(
            refresh_token_factory_contract,
            tokens,
            $setup,
            (factory),
            [
                generated_refresh_tokens_are_distinct,
                a_digest_is_the_same_for_the_same_token,
                distinct_tokens_have_distinct_digests,
                a_digest_does_not_contain_the_token,
            ]
        );
    };
}
