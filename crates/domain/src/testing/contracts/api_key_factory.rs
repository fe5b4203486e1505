//! The [`ApiKeyFactory`] contract.

use crate::access::*;

pub async fn keys_are_unique_prefixed_and_hash_stably(factory: &impl ApiKeyFactory) {
    let a = factory.generate().expect("generate failed");
    let b = factory.generate().expect("generate failed");
    assert_ne!(a.secret, b.secret, "two keys differ");
    assert_ne!(a.hash, b.hash, "two keys hash differently");
    assert!(
        a.secret.expose().starts_with(ApiKeySecret::PREFIX),
        "keys carry the scannable prefix"
    );
    assert_eq!(
        factory.hash(a.secret.expose()),
        Some(a.hash.clone()),
        "a key hashes to what generate returned"
    );
    assert_ne!(
        a.hash.as_bytes(),
        a.secret.expose().as_bytes(),
        "the stored form is not the key"
    );
}

pub async fn tokens_that_are_not_keys_have_no_hash(factory: &impl ApiKeyFactory) {
    let key = factory.generate().expect("generate failed");
    let secret = key.secret.expose();
    let hex = eagate_protocol::hex(key.hash.as_bytes());
    for token in [
        "",
        ApiKeySecret::PREFIX,
        &secret[..secret.len() - 1],
        &format!("{secret}x"),
        &secret[ApiKeySecret::PREFIX.len()..],
        &hex,
        &format!("{}{hex}", ApiKeySecret::PREFIX),
    ] {
        assert_eq!(factory.hash(token), None, "{token:?} is not a key");
    }
}

/// Every rule in order; per-rule tests come from
/// [`api_key_factory_contract!`](crate::api_key_factory_contract).
pub async fn api_key_factory_contract(factory: &impl ApiKeyFactory) {
    keys_are_unique_prefixed_and_hash_stably(factory).await;
    tokens_that_are_not_keys_have_no_hash(factory).await;
}

/// One `#[tokio::test]` per [`ApiKeyFactory`] rule. `$setup`: an async
/// block returning `(guard, factory)`.
#[macro_export]
macro_rules! api_key_factory_contract {
    ($setup:expr) => {
        $crate::__contract_cases!(
            api_key_factory_contract,
            api_key_factory,
            $setup,
            (factory),
            [
                keys_are_unique_prefixed_and_hash_stably,
                tokens_that_are_not_keys_have_no_hash,
            ]
        );
    };
}
