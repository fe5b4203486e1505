//! The contracts of the device-secret ports: [`DeviceSecretFactory`],
//! [`SecretSealer`] and [`SignatureVerifier`]. What only real cryptography
//! can show (entropy, the cipher, constant-time comparison, the published
//! protocol vectors) is the adapters' own tests.

use std::collections::HashSet;

use super::fixtures::unknown_device;
use crate::device::*;

fn generate(factory: &impl DeviceSecretFactory) -> DeviceSecret {
    factory
        .generate()
        .expect("generating a device secret must succeed")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

pub async fn generated_secrets_are_distinct(factory: &impl DeviceSecretFactory) {
    let secrets: HashSet<String> = (0..32).map(|_| generate(factory).expose().to_owned()).collect();
    assert_eq!(secrets.len(), 32, "32 generated secrets must all differ");
}

pub async fn generated_secrets_carry_the_protocol_prefix(factory: &impl DeviceSecretFactory) {
    let secret = generate(factory);
    assert!(
        secret.expose().starts_with(DeviceSecret::PREFIX),
        "a device secret must start with {:?}",
        DeviceSecret::PREFIX
    );
    assert!(
        secret.expose().len() > DeviceSecret::PREFIX.len(),
        "and have something after the prefix"
    );
}

pub async fn a_fingerprint_is_the_same_for_the_same_secret(factory: &impl DeviceSecretFactory) {
    let secret = generate(factory);
    let copy = DeviceSecret::new(secret.expose().to_owned());
    assert_eq!(
        factory.fingerprint(&secret),
        factory.fingerprint(&copy),
        "a fingerprint must not change (owners compare it with what their EA holds)"
    );
}

pub async fn distinct_secrets_have_distinct_fingerprints(factory: &impl DeviceSecretFactory) {
    let fingerprints: HashSet<String> = (0..32)
        .map(|_| factory.fingerprint(&generate(factory)).as_str().to_owned())
        .collect();
    assert_eq!(
        fingerprints.len(),
        32,
        "32 distinct secrets must have 32 distinct fingerprints"
    );
}

pub async fn a_fingerprint_does_not_reveal_the_secret(factory: &impl DeviceSecretFactory) {
    let secret = generate(factory);
    let fingerprint = factory.fingerprint(&secret);
    let body = &secret.expose()[DeviceSecret::PREFIX.len()..];
    assert!(
        !contains(fingerprint.as_str().as_bytes(), body.as_bytes()),
        "a fingerprint (shown in listings) must not contain the secret"
    );
}

/// Runs every device-secret rule in order; prefer
/// [`device_secret_factory_contract!`](crate::device_secret_factory_contract),
/// which gives each rule a test of its own.
pub async fn device_secret_factory_contract(factory: &impl DeviceSecretFactory) {
    generated_secrets_are_distinct(factory).await;
    generated_secrets_carry_the_protocol_prefix(factory).await;
    a_fingerprint_is_the_same_for_the_same_secret(factory).await;
    distinct_secrets_have_distinct_fingerprints(factory).await;
    a_fingerprint_does_not_reveal_the_secret(factory).await;
}

/// One `#[tokio::test]` per [`DeviceSecretFactory`] rule, in a module
/// `device_secret_factory_contract`. `$setup`: an async block returning
/// `(guard, factory)`.
#[macro_export]
macro_rules! device_secret_factory_contract {
    ($setup:expr) => {
        $crate::__contract_cases!(
            device_secret_factory_contract,
            secrets,
            $setup,
            (factory),
            [
                generated_secrets_are_distinct,
                generated_secrets_carry_the_protocol_prefix,
                a_fingerprint_is_the_same_for_the_same_secret,
                distinct_secrets_have_distinct_fingerprints,
                a_fingerprint_does_not_reveal_the_secret,
            ]
        );
    };
}

fn secret(text: &str) -> DeviceSecret {
    DeviceSecret::new(text.to_owned())
}

fn seal(sealer: &impl SecretSealer, device: DeviceId, s: &DeviceSecret) -> SealedSecret {
    sealer.seal(device, s).expect("sealing must succeed")
}

pub async fn a_sealed_secret_opens_for_its_device(sealer: &impl SecretSealer, _rotated: &impl SecretSealer) {
    let device = unknown_device();
    let s = secret("eags_contract-secret-1");
    let sealed = seal(sealer, device, &s);
    let opened = sealer.open(device, &sealed);
    assert!(
        opened.as_ref().is_ok_and(|o| *o == s),
        "a sealed secret must open to itself for its device, got {:?}",
        opened.err()
    );
}

pub async fn sealing_uses_the_current_key(sealer: &impl SecretSealer, _rotated: &impl SecretSealer) {
    let sealed = seal(sealer, unknown_device(), &secret("eags_contract-secret-1"));
    assert_eq!(
        sealed.key_id,
        sealer.current_key_id(),
        "a seal records the current key's id"
    );
}

pub async fn a_sealed_secret_does_not_reveal_the_secret(
    sealer: &impl SecretSealer,
    _rotated: &impl SecretSealer,
) {
    let text = "eags_contract-secret-1";
    let sealed = seal(sealer, unknown_device(), &secret(text));
    assert!(
        !contains(&sealed.ciphertext, text.as_bytes()) && !contains(&sealed.ciphertext, b"contract-secret-1"),
        "the stored ciphertext must not contain the secret"
    );
}

pub async fn a_secret_sealed_for_one_device_does_not_open_for_another(
    sealer: &impl SecretSealer,
    _rotated: &impl SecretSealer,
) {
    let sealed = seal(sealer, unknown_device(), &secret("eags_contract-secret-1"));
    let opened = sealer.open(unknown_device(), &sealed);
    assert!(
        matches!(opened, Err(OpenSecretError::Corrupt)),
        "a sealed secret moved to another device must not open (Corrupt), got {:?}",
        opened.map(|_| "a secret")
    );
}

pub async fn a_tampered_seal_does_not_open(sealer: &impl SecretSealer, _rotated: &impl SecretSealer) {
    let device = unknown_device();
    let sealed = seal(sealer, device, &secret("eags_contract-secret-1"));
    let len = sealed.ciphertext.len();
    for at in [0, len / 2, len - 1] {
        let mut tampered = sealed.clone();
        tampered.ciphertext[at] ^= 0x01;
        let opened = sealer.open(device, &tampered);
        assert!(
            matches!(opened, Err(OpenSecretError::Corrupt)),
            "a ciphertext with one bit flipped (byte {at} of {len}) must not open (Corrupt), got {:?}",
            opened.map(|_| "a secret")
        );
    }
    for truncated in [Vec::new(), sealed.ciphertext[..len / 2].to_vec()] {
        let opened = sealer.open(
            device,
            &SealedSecret {
                key_id: sealed.key_id.clone(),
                ciphertext: truncated,
            },
        );
        assert!(
            matches!(opened, Err(OpenSecretError::Corrupt)),
            "a truncated ciphertext must not open (Corrupt), got {:?}",
            opened.map(|_| "a secret")
        );
    }
}

pub async fn an_unknown_key_is_reported_by_its_id(sealer: &impl SecretSealer, _rotated: &impl SecretSealer) {
    let device = unknown_device();
    let mut sealed = seal(sealer, device, &secret("eags_contract-secret-1"));
    sealed.key_id = "no-such-key".into();
    let opened = sealer.open(device, &sealed);
    assert!(
        matches!(&opened, Err(OpenSecretError::UnknownKey(id)) if id == "no-such-key"),
        "a seal under a key the sealer does not hold must fail with UnknownKey(its id), got {:?}",
        opened.map(|_| "a secret")
    );
}

pub async fn a_new_current_key_still_opens_older_seals(
    sealer: &impl SecretSealer,
    rotated: &impl SecretSealer,
) {
    assert_ne!(
        sealer.current_key_id(),
        rotated.current_key_id(),
        "setting up: `rotated` must have another current key"
    );
    let device = unknown_device();
    let s = secret("eags_contract-secret-1");
    let old = seal(sealer, device, &s);
    let opened = rotated.open(device, &old);
    assert!(
        opened.as_ref().is_ok_and(|o| *o == s),
        "a keyring with a new current key must still open secrets sealed under the old one, got {:?}",
        opened.err()
    );
    let new = seal(rotated, device, &s);
    assert_eq!(
        new.key_id,
        rotated.current_key_id(),
        "new seals use the new current key"
    );
}

pub async fn an_older_keyring_cannot_open_newer_seals(
    sealer: &impl SecretSealer,
    rotated: &impl SecretSealer,
) {
    let device = unknown_device();
    let new = seal(rotated, device, &secret("eags_contract-secret-1"));
    let opened = sealer.open(device, &new);
    assert!(
        matches!(&opened, Err(OpenSecretError::UnknownKey(id)) if id == rotated.current_key_id()),
        "a keyring without the new key must fail with UnknownKey(new key), got {:?}",
        opened.map(|_| "a secret")
    );
}

/// Runs every sealer rule in order; prefer
/// [`secret_sealer_contract!`](crate::secret_sealer_contract), which gives
/// each rule a test of its own.
pub async fn secret_sealer_contract(sealer: &impl SecretSealer, rotated: &impl SecretSealer) {
    a_sealed_secret_opens_for_its_device(sealer, rotated).await;
    sealing_uses_the_current_key(sealer, rotated).await;
    a_sealed_secret_does_not_reveal_the_secret(sealer, rotated).await;
    a_secret_sealed_for_one_device_does_not_open_for_another(sealer, rotated).await;
    a_tampered_seal_does_not_open(sealer, rotated).await;
    an_unknown_key_is_reported_by_its_id(sealer, rotated).await;
    a_new_current_key_still_opens_older_seals(sealer, rotated).await;
    an_older_keyring_cannot_open_newer_seals(sealer, rotated).await;
}

/// One `#[tokio::test]` per [`SecretSealer`] rule, in a module
/// `secret_sealer_contract`. `$setup`: an async block returning
/// `(guard, sealer, rotated)`: `rotated` has a new current key and still
/// holds `sealer`'s current key; `sealer` does not hold the new one.
#[macro_export]
macro_rules! secret_sealer_contract {
    ($setup:expr) => {
        $crate::__contract_cases!(
            secret_sealer_contract,
            secrets,
            $setup,
            (sealer, rotated),
            [
                a_sealed_secret_opens_for_its_device,
                sealing_uses_the_current_key,
                a_sealed_secret_does_not_reveal_the_secret,
                a_secret_sealed_for_one_device_does_not_open_for_another,
                a_tampered_seal_does_not_open,
                an_unknown_key_is_reported_by_its_id,
                a_new_current_key_still_opens_older_seals,
                an_older_keyring_cannot_open_newer_seals,
            ]
        );
    };
}

/// A device with a secret sealed by `sealer`, and a signature of `message`
/// made with that secret.
fn signed(
    sealer: &impl SecretSealer,
    sign: &impl Fn(&str, &str) -> [u8; 32],
    text: &str,
    message: &str,
) -> (DeviceId, SealedSecret, [u8; 32]) {
    let device = unknown_device();
    let sealed = seal(sealer, device, &secret(text));
    (device, sealed, sign(text, message))
}

fn verify(
    verifier: &impl SignatureVerifier,
    device: DeviceId,
    sealed: &SealedSecret,
    message: &str,
    signature: &[u8; 32],
) -> bool {
    verifier
        .verify(device, sealed, message, signature)
        .expect("verify must answer for a secret it can open")
}

const MESSAGE: &str = "GET\n/api/v1/device/config\n\n1767225600\nnonce-0000000001\ne3b0c442";

pub async fn a_valid_signature_verifies(
    sealer: &impl SecretSealer,
    verifier: &impl SignatureVerifier,
    sign: &impl Fn(&str, &str) -> [u8; 32],
) {
    let (device, sealed, signature) = signed(sealer, sign, "eags_contract-secret-1", MESSAGE);
    assert!(
        verify(verifier, device, &sealed, MESSAGE, &signature),
        "a signature of the message with the device's secret must verify"
    );
}

pub async fn a_changed_signature_is_refused(
    sealer: &impl SecretSealer,
    verifier: &impl SignatureVerifier,
    sign: &impl Fn(&str, &str) -> [u8; 32],
) {
    let (device, sealed, signature) = signed(sealer, sign, "eags_contract-secret-1", MESSAGE);
    for byte in [0, 15, 31] {
        let mut changed = signature;
        changed[byte] ^= 0x01;
        assert!(
            !verify(verifier, device, &sealed, MESSAGE, &changed),
            "a signature with one bit flipped (byte {byte}) must be refused"
        );
    }
    assert!(
        !verify(verifier, device, &sealed, MESSAGE, &[0; 32]),
        "an all-zero signature must be refused"
    );
}

pub async fn a_signature_of_another_message_is_refused(
    sealer: &impl SecretSealer,
    verifier: &impl SignatureVerifier,
    sign: &impl Fn(&str, &str) -> [u8; 32],
) {
    let (device, sealed, signature) = signed(sealer, sign, "eags_contract-secret-1", MESSAGE);
    for other in [&format!("{MESSAGE}\n"), "GET\n/api/v1/device/config", ""] {
        assert!(
            !verify(verifier, device, &sealed, other, &signature),
            "a signature must not verify another message ({other:?})"
        );
    }
}

pub async fn a_signature_made_with_another_secret_is_refused(
    sealer: &impl SecretSealer,
    verifier: &impl SignatureVerifier,
    sign: &impl Fn(&str, &str) -> [u8; 32],
) {
    let (device, sealed, _) = signed(sealer, sign, "eags_contract-secret-1", MESSAGE);
    let forged = sign("eags_contract-secret-2", MESSAGE);
    assert!(
        !verify(verifier, device, &sealed, MESSAGE, &forged),
        "a signature made with another secret must be refused"
    );
}

pub async fn a_secret_that_does_not_open_is_an_error(
    sealer: &impl SecretSealer,
    verifier: &impl SignatureVerifier,
    sign: &impl Fn(&str, &str) -> [u8; 32],
) {
    let (_, sealed, signature) = signed(sealer, sign, "eags_contract-secret-1", MESSAGE);
    assert!(
        verifier
            .verify(unknown_device(), &sealed, MESSAGE, &signature)
            .is_err(),
        "a secret sealed for another device must make verify fail, not answer"
    );
    let unknown_key = SealedSecret {
        key_id: "no-such-key".into(),
        ..sealed
    };
    assert!(
        verifier
            .verify(unknown_device(), &unknown_key, MESSAGE, &signature)
            .is_err(),
        "a secret under an unknown key must make verify fail, not answer"
    );
}

pub async fn a_replaced_secret_takes_effect_at_once(
    sealer: &impl SecretSealer,
    verifier: &impl SignatureVerifier,
    sign: &impl Fn(&str, &str) -> [u8; 32],
) {
    let (device, old, old_signature) = signed(sealer, sign, "eags_contract-secret-old", MESSAGE);
    assert!(
        verify(verifier, device, &old, MESSAGE, &old_signature),
        "the old secret verifies"
    );
    let new = seal(sealer, device, &secret("eags_contract-secret-new"));
    let new_signature = sign("eags_contract-secret-new", MESSAGE);
    assert!(
        !verify(verifier, device, &new, MESSAGE, &old_signature),
        "after a rotation the old secret's signature must be refused against the new sealed secret \
         (no stale cache)"
    );
    assert!(
        verify(verifier, device, &new, MESSAGE, &new_signature),
        "the new secret verifies at once"
    );
    assert!(
        verify(verifier, device, &old, MESSAGE, &old_signature),
        "the old sealed secret (kept during a grace period) still verifies its own signatures"
    );
}

/// Runs every verifier rule in order; prefer
/// [`signature_verifier_contract!`](crate::signature_verifier_contract),
/// which gives each rule a test of its own.
pub async fn signature_verifier_contract(
    sealer: &impl SecretSealer,
    verifier: &impl SignatureVerifier,
    sign: &impl Fn(&str, &str) -> [u8; 32],
) {
    a_valid_signature_verifies(sealer, verifier, sign).await;
    a_changed_signature_is_refused(sealer, verifier, sign).await;
    a_signature_of_another_message_is_refused(sealer, verifier, sign).await;
    a_signature_made_with_another_secret_is_refused(sealer, verifier, sign).await;
    a_secret_that_does_not_open_is_an_error(sealer, verifier, sign).await;
    a_replaced_secret_takes_effect_at_once(sealer, verifier, sign).await;
}

/// One `#[tokio::test]` per [`SignatureVerifier`] rule, in a module
/// `signature_verifier_contract`. `$setup`: an async block returning
/// `(guard, sealer, verifier, sign)`: the verifier opens what `sealer`
/// seals, and `sign(secret, message)` makes the signature it must accept.
#[macro_export]
macro_rules! signature_verifier_contract {
    ($setup:expr) => {
        $crate::__contract_cases!(
            signature_verifier_contract,
            secrets,
            $setup,
            (sealer, verifier, sign),
            [
                a_valid_signature_verifies,
                a_changed_signature_is_refused,
                a_signature_of_another_message_is_refused,
                a_signature_made_with_another_secret_is_refused,
                a_secret_that_does_not_open_is_an_error,
                a_replaced_secret_takes_effect_at_once,
            ]
        );
    };
}
