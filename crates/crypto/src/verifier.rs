use foldhash::HashMap;
use std::sync::{Arc, RwLock};

use eagate_domain::UnexpectedError;
use eagate_domain::device::{DeviceId, SealedSecret, SecretSealer, SignatureVerifier};
use eagate_protocol::SigningKey;

use crate::XChaChaSealer;

/// Cached keys beyond this many are dropped wholesale (they are cheap to
/// rebuild; the bound only caps memory).
const MAX_CACHED_KEYS: usize = 100_000;

/// Per device: the sealed bytes a key was opened from, and the ready key.
type KeyCache = HashMap<DeviceId, (Vec<u8>, SigningKey)>;

/// [`SignatureVerifier`] with HMAC-SHA256. Opening a sealed secret and
/// scheduling its HMAC key happen once per secret: the ready key is cached
/// in memory by device, tagged with the exact sealed bytes it came from, so
/// a rotated or re-sealed secret is never served stale. The cache is local
/// to this instance and holds nothing another instance needs.
#[derive(Clone)]
pub struct HmacVerifier {
    sealer: XChaChaSealer,
    keys: Arc<RwLock<KeyCache>>,
}

impl std::fmt::Debug for HmacVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HmacVerifier").finish_non_exhaustive()
    }
}

impl HmacVerifier {
    pub fn new(sealer: XChaChaSealer) -> Self {
        Self {
            sealer,
            keys: Arc::default(),
        }
    }

    fn key_for(&self, device: DeviceId, sealed: &SealedSecret) -> Result<SigningKey, UnexpectedError> {
        if let Ok(keys) = self.keys.read()
            && let Some((tag, key)) = keys.get(&device)
            && *tag == sealed.ciphertext
        {
            return Ok(key.clone());
        }
        let secret = self
            .sealer
            .open(device, sealed)
            .map_err(|e| UnexpectedError::msg(format!("cannot open the secret of device {device}: {e}")))?;
        let key = SigningKey::new(secret.expose());
        if let Ok(mut keys) = self.keys.write() {
            if keys.len() >= MAX_CACHED_KEYS {
                keys.clear();
            }
            keys.insert(device, (sealed.ciphertext.clone(), key.clone()));
        }
        Ok(key)
    }
}

impl SignatureVerifier for HmacVerifier {
    fn verify(
        &self,
        device: DeviceId,
        sealed: &SealedSecret,
        message: &str,
        signature: &[u8; 32],
    ) -> Result<bool, UnexpectedError> {
        Ok(self.key_for(device, sealed)?.verify(message, signature))
    }
}

#[cfg(test)]
mod tests {
    use eagate_domain::device::DeviceSecret;
    use uuid::Uuid;

    use super::*;
    use crate::MasterKeyring;

    fn sealer() -> XChaChaSealer {
        XChaChaSealer::new(MasterKeyring::parse(&MasterKeyring::generate_entry("k1").unwrap()).unwrap())
    }

    #[test]
    fn verifies_the_published_vectors_through_a_sealed_secret() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../../docs/protocol-vectors.json")).unwrap();
        let sealer = sealer();
        let verifier = HmacVerifier::new(sealer.clone());
        let device = DeviceId::from_uuid(doc["device_id"].as_str().unwrap().parse().unwrap());
        let sealed = sealer
            .seal(
                device,
                &DeviceSecret::new(doc["secret"].as_str().unwrap().to_owned()),
            )
            .unwrap();
        for v in doc["vectors"].as_array().unwrap() {
            let message = v["string_to_sign"].as_str().unwrap();
            let mac = eagate_protocol::parse_signature(v["signature"].as_str().unwrap()).unwrap();
            assert!(
                verifier.verify(device, &sealed, message, &mac).unwrap(),
                "{}",
                v["name"]
            );
            let mut wrong = mac;
            wrong[31] ^= 1;
            assert!(!verifier.verify(device, &sealed, message, &wrong).unwrap());
        }
    }

    #[test]
    fn a_rotated_secret_is_never_served_from_the_cache() {
        let sealer = sealer();
        let verifier = HmacVerifier::new(sealer.clone());
        let device = DeviceId::from_uuid(Uuid::now_v7());
        let old = sealer
            .seal(device, &DeviceSecret::new("eags_old".into()))
            .unwrap();
        let new = sealer
            .seal(device, &DeviceSecret::new("eags_new".into()))
            .unwrap();
        let mac_new = SigningKey::new("eags_new").sign("m");
        let mac_old = SigningKey::new("eags_old").sign("m");
        assert!(verifier.verify(device, &old, "m", &mac_old).unwrap());
        assert!(!verifier.verify(device, &new, "m", &mac_old).unwrap());
        assert!(verifier.verify(device, &new, "m", &mac_new).unwrap());
        assert!(verifier.verify(device, &old, "m", &mac_old).unwrap());
        // A secret sealed for another device does not open.
        assert!(
            verifier
                .verify(DeviceId::from_uuid(Uuid::now_v7()), &old, "m", &mac_old)
                .is_err()
        );
    }

    mod properties {
        use eagate_protocol::{body_sha256_hex, sign_request, split_target, string_to_sign};
        use proptest::prelude::*;

        use super::*;

        /// One signed request's fields, as they enter the string to sign.
        #[derive(Debug, Clone)]
        struct Request {
            method: String,
            path: String,
            query: String,
            body: Vec<u8>,
            timestamp: i64,
            nonce: String,
            device: Uuid,
        }

        impl Request {
            fn target(&self) -> String {
                if self.query.is_empty() {
                    self.path.clone()
                } else {
                    format!("{}?{}", self.path, self.query)
                }
            }

            fn message(&self) -> String {
                let target = self.target();
                let (path, query) = split_target(&target);
                string_to_sign(
                    &self.method,
                    path,
                    query,
                    &self.device.hyphenated().to_string(),
                    &self.timestamp.to_string(),
                    &self.nonce,
                    &body_sha256_hex(&self.body),
                )
            }
        }

        fn request() -> impl Strategy<Value = Request> {
            (
                prop::sample::select(vec!["GET", "POST", "PUT", "PATCH", "DELETE"]),
                "/api/v1/device/[a-z%0-9/._~-]{0,30}",
                "[a-z0-9=&%+._~-]{0,30}",
                prop::collection::vec(any::<u8>(), 0..200),
                0i64..=999_999_999_999,
                "[A-Za-z0-9._~-]{16,64}",
                any::<u128>(),
            )
                .prop_map(|(method, path, query, body, timestamp, nonce, device)| Request {
                    method: method.to_owned(),
                    path,
                    query,
                    body,
                    timestamp,
                    nonce,
                    device: Uuid::from_u128(device),
                })
        }

        /// A change to exactly one part of a signed request.
        #[derive(Debug, Clone)]
        enum Change {
            Method(String),
            Path(String),
            Query(String),
            Body(Vec<u8>),
            Timestamp(i64),
            Nonce(String),
            DeviceId(u128),
            /// Flip bits of one signature byte.
            Signature(prop::sample::Index, u8),
        }

        fn change() -> impl Strategy<Value = Change> {
            prop_oneof![
                "[A-Z]{1,8}".prop_map(Change::Method),
                "/[a-zA-Z%0-9/._~-]{0,30}".prop_map(Change::Path),
                "[a-zA-Z0-9=&%+._~-]{0,30}".prop_map(Change::Query),
                prop::collection::vec(any::<u8>(), 0..200).prop_map(Change::Body),
                (0i64..=999_999_999_999).prop_map(Change::Timestamp),
                "[A-Za-z0-9._~-]{16,64}".prop_map(Change::Nonce),
                any::<u128>().prop_map(Change::DeviceId),
                (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(i, b)| Change::Signature(i, b)),
            ]
        }

        proptest! {
            /// A signed request verifies through the sealed secret; any
            /// change to its method, path, query, body, timestamp, nonce,
            /// device id or signature does not (protocol v1 covers them
            /// all; ASVS 5.0 4.1.5).
            #[test]
            fn any_change_to_a_signed_request_fails_verification(original in request(), change in change()) {
                let sealer = sealer();
                let verifier = HmacVerifier::new(sealer.clone());
                let secret = "eags_TESTONLY-0123456789abcdefghijklmnopqrstuvwxyzAB";
                let device = DeviceId::from_uuid(original.device);
                let sealed = sealer.seal(device, &DeviceSecret::new(secret.into())).unwrap();
                let signed = sign_request(
                    &SigningKey::new(secret),
                    &original.method,
                    &original.target(),
                    &original.device.hyphenated().to_string(),
                    original.timestamp,
                    &original.nonce,
                    &original.body,
                );
                let mac = eagate_protocol::parse_signature(&signed.signature).unwrap();
                prop_assert!(verifier.verify(device, &sealed, &original.message(), &mac).unwrap());

                let mut changed = original.clone();
                let mut changed_mac = mac;
                match change {
                    Change::Method(m) => changed.method = m,
                    Change::Path(p) => changed.path = p,
                    Change::Query(q) => changed.query = q,
                    Change::Body(b) => changed.body = b,
                    Change::Timestamp(t) => changed.timestamp = t,
                    Change::Nonce(n) => changed.nonce = n,
                    Change::DeviceId(d) => changed.device = Uuid::from_u128(d),
                    Change::Signature(i, bits) => changed_mac[i.index(32)] ^= bits,
                }
                let same = changed.method.eq_ignore_ascii_case(&original.method)
                    && changed.path == original.path
                    && changed.query == original.query
                    && changed.body == original.body
                    && changed.timestamp == original.timestamp
                    && changed.nonce == original.nonce
                    && changed.device == original.device
                    && changed_mac == mac;
                prop_assume!(!same);
                // Checked as the server checks it: the device named in the
                // request, with that device's sealed secret.
                let named = DeviceId::from_uuid(changed.device);
                let verdict = verifier.verify(named, &sealed, &changed.message(), &changed_mac);
                prop_assert!(!matches!(verdict, Ok(true)), "{:?} verified", changed);
                // Even with the original device's secret, the changed
                // request does not verify.
                prop_assert!(!verifier.verify(device, &sealed, &changed.message(), &changed_mac).unwrap());
            }
        }
    }
}
