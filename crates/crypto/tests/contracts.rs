//! The domain's port contracts, run against the real crypto adapters (the
//! same rules the fakes in `eagate_domain::testing` are held to).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use eagate_crypto::{
    Argon2Hasher, Argon2Params, Ed25519Keys, HmacVerifier, JwtAccessTokens, JwtConfig, MasterKeyring,
    OpaqueRefreshTokens, RandomDeviceSecrets, XChaChaSealer,
};

/// Cheap parameters: the contract is about behaviour, not cost.
fn argon2(memory_kib: u32) -> Argon2Hasher {
    let params = Argon2Params {
        memory_kib,
        iterations: 1,
        parallelism: 1,
    };
    Argon2Hasher::new(params, 2).unwrap()
}

/// A sealer over the keyring `keyring` (`kid:key,…`, the first current).
fn sealer(keyring: &str) -> XChaChaSealer {
    XChaChaSealer::new(MasterKeyring::parse(keyring).unwrap())
}

eagate_domain::password_hasher_contract!(async { ((), argon2(64), argon2(32)) });

eagate_domain::access_token_issuer_contract!(async {
    let config = JwtConfig {
        issuer: "eagate".into(),
        audience: "eagate-api".into(),
    };
    (
        (),
        JwtAccessTokens::new(&Ed25519Keys::generate().unwrap(), config),
    )
});

eagate_domain::api_key_factory_contract!(async { ((), eagate_crypto::HmacApiKeys::new(&[9; 32]).unwrap()) });

eagate_domain::refresh_token_factory_contract!(async { ((), OpaqueRefreshTokens) });

eagate_domain::device_secret_factory_contract!(async { ((), RandomDeviceSecrets) });

eagate_domain::secret_sealer_contract!(async {
    let k1 = MasterKeyring::generate_entry("k1").unwrap();
    let k2 = MasterKeyring::generate_entry("k2").unwrap();
    ((), sealer(&k1), sealer(&format!("{k2},{k1}")))
});

eagate_domain::signature_verifier_contract!(async {
    let sealer = sealer(&MasterKeyring::generate_entry("k1").unwrap());
    let sign = |secret: &str, message: &str| eagate_protocol::SigningKey::new(secret).sign(message);
    ((), sealer.clone(), HmacVerifier::new(sealer), sign)
});
