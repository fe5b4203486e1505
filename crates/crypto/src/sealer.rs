use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead as _, Payload};
use chacha20poly1305::{Key, KeyInit as _, XChaCha20Poly1305, XNonce};
use eagate_domain::UnexpectedError;
use eagate_domain::device::{DeviceId, DeviceSecret, OpenSecretError, SealedSecret, SecretSealer};

use crate::random::random_bytes;

const NONCE_LEN: usize = 24;
/// Associated-data label: a sealed device secret is only ever opened as
/// one, and only for the device it was sealed for.
const AAD_LABEL: &[u8] = b"eagate/device-secret/v1/";

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("the keyring is empty: give at least one `<key-id>:<base64url 32-byte key>`")]
    Empty,
    #[error("entry {0} is not `<key-id>:<base64url key>`")]
    Malformed(usize),
    #[error("key id {0:?} must be 1–32 characters of A-Z a-z 0-9 _ -")]
    BadKeyId(String),
    #[error("key {0:?} must be 32 bytes of base64url")]
    BadKey(String),
    #[error("key id {0:?} appears twice")]
    Duplicate(String),
}

/// Master keys for sealing device secrets: the first is current (it seals),
/// the others can still open, until every secret has been re-sealed.
#[derive(Clone)]
pub struct MasterKeyring {
    current: String,
    ciphers: HashMap<String, XChaCha20Poly1305>,
}

impl std::fmt::Debug for MasterKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<&String> = self.ciphers.keys().collect();
        ids.sort();
        f.debug_struct("MasterKeyring")
            .field("current", &self.current)
            .field("key_ids", &ids)
            .finish()
    }
}

impl MasterKeyring {
    /// Parses `kid:key[,kid:key…]` (commas or newlines; `#` comments and
    /// blank lines ignored), the first entry being current.
    pub fn parse(text: &str) -> Result<Self, KeyringError> {
        let mut current = None;
        let mut ciphers = HashMap::new();
        let entries = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.starts_with('#'))
            .flat_map(|line| line.split(','))
            .map(str::trim)
            .filter(|e| !e.is_empty());
        for (i, entry) in entries.enumerate() {
            let (kid, key) = entry.split_once(':').ok_or(KeyringError::Malformed(i + 1))?;
            let (kid, key) = (kid.trim(), key.trim());
            if kid.is_empty()
                || kid.len() > 32
                || !kid
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(KeyringError::BadKeyId(kid.to_owned()));
            }
            let bytes = URL_SAFE_NO_PAD
                .decode(key)
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| KeyringError::BadKey(kid.to_owned()))?;
            let cipher = XChaCha20Poly1305::new(
                &Key::try_from(bytes.as_slice()).map_err(|_| KeyringError::BadKey(kid.to_owned()))?,
            );
            if ciphers.insert(kid.to_owned(), cipher).is_some() {
                return Err(KeyringError::Duplicate(kid.to_owned()));
            }
            current.get_or_insert_with(|| kid.to_owned());
        }
        Ok(Self {
            current: current.ok_or(KeyringError::Empty)?,
            ciphers,
        })
    }

    /// A new random key entry `<kid>:<base64url key>`.
    pub fn generate_entry(kid: &str) -> Result<String, UnexpectedError> {
        Ok(format!("{kid}:{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)))
    }

    pub fn key_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.ciphers.keys().map(String::as_str).collect();
        ids.sort_unstable();
        ids
    }
}

fn aad(device: DeviceId) -> Vec<u8> {
    [AAD_LABEL, device.as_uuid().as_bytes().as_slice()].concat()
}

/// [`SecretSealer`] with XChaCha20-Poly1305: a random 192-bit nonce per
/// seal, the device id bound as associated data, the key id stored beside.
#[derive(Debug, Clone)]
pub struct XChaChaSealer {
    keyring: MasterKeyring,
}

impl XChaChaSealer {
    pub fn new(keyring: MasterKeyring) -> Self {
        Self { keyring }
    }
}

impl SecretSealer for XChaChaSealer {
    fn seal(&self, device: DeviceId, secret: &DeviceSecret) -> Result<SealedSecret, UnexpectedError> {
        let cipher = self
            .keyring
            .ciphers
            .get(&self.keyring.current)
            .ok_or_else(|| UnexpectedError::msg("current master key missing from the keyring"))?;
        let nonce = random_bytes::<NONCE_LEN>()?;
        let aad = aad(device);
        let ciphertext = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: secret.expose().as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| UnexpectedError::msg("sealing a device secret failed"))?;
        Ok(SealedSecret {
            key_id: self.keyring.current.clone(),
            ciphertext: [nonce.as_slice(), &ciphertext].concat(),
        })
    }

    fn open(&self, device: DeviceId, sealed: &SealedSecret) -> Result<DeviceSecret, OpenSecretError> {
        let cipher = self
            .keyring
            .ciphers
            .get(&sealed.key_id)
            .ok_or_else(|| OpenSecretError::UnknownKey(sealed.key_id.clone()))?;
        if sealed.ciphertext.len() < NONCE_LEN {
            return Err(OpenSecretError::Corrupt);
        }
        let (nonce, ciphertext) = sealed.ciphertext.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| OpenSecretError::Corrupt)?;
        let aad = aad(device);
        let plain = cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| OpenSecretError::Corrupt)?;
        String::from_utf8(plain)
            .map(DeviceSecret::new)
            .map_err(|_| OpenSecretError::Corrupt)
    }

    fn current_key_id(&self) -> &str {
        &self.keyring.current
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn keyring(entries: &[&str]) -> MasterKeyring {
        MasterKeyring::parse(&entries.join(",")).unwrap()
    }

    fn device() -> DeviceId {
        DeviceId::from_uuid(Uuid::now_v7())
    }

    #[test]
    fn seal_and_open_round_trip_with_fresh_nonces() {
        let k1 = MasterKeyring::generate_entry("k1").unwrap();
        let sealer = XChaChaSealer::new(keyring(&[&k1]));
        let d = device();
        let secret = DeviceSecret::new("eags_example-secret".into());
        let a = sealer.seal(d, &secret).unwrap();
        let b = sealer.seal(d, &secret).unwrap();
        assert_eq!(a.key_id, "k1");
        assert_ne!(a.ciphertext, b.ciphertext, "nonces must differ");
        assert!(
            !a.ciphertext
                .windows(secret.expose().len())
                .any(|w| w == secret.expose().as_bytes())
        );
        assert_eq!(sealer.open(d, &a).unwrap(), secret);
    }

    #[test]
    fn a_sealed_secret_is_bound_to_its_device_and_key() {
        let k1 = MasterKeyring::generate_entry("k1").unwrap();
        let other = MasterKeyring::generate_entry("k1").unwrap();
        let sealer = XChaChaSealer::new(keyring(&[&k1]));
        let d = device();
        let sealed = sealer.seal(d, &DeviceSecret::new("eags_x".into())).unwrap();
        assert!(matches!(
            sealer.open(device(), &sealed),
            Err(OpenSecretError::Corrupt)
        ));
        assert!(matches!(
            XChaChaSealer::new(keyring(&[&other])).open(d, &sealed),
            Err(OpenSecretError::Corrupt)
        ));
        let mut tampered = sealed.clone();
        let last = tampered.ciphertext.len() - 1;
        tampered.ciphertext[last] ^= 1;
        assert!(matches!(sealer.open(d, &tampered), Err(OpenSecretError::Corrupt)));
        let truncated = SealedSecret {
            key_id: "k1".into(),
            ciphertext: vec![0; 10],
        };
        assert!(matches!(
            sealer.open(d, &truncated),
            Err(OpenSecretError::Corrupt)
        ));
        let unknown = SealedSecret {
            key_id: "k9".into(),
            ..sealed
        };
        assert!(matches!(sealer.open(d, &unknown), Err(OpenSecretError::UnknownKey(k)) if k == "k9"));
    }

    #[test]
    fn older_keys_still_open_after_a_new_current_key() {
        let k1 = MasterKeyring::generate_entry("k1").unwrap();
        let k2 = MasterKeyring::generate_entry("k2").unwrap();
        let d = device();
        let secret = DeviceSecret::new("eags_y".into());
        let old = XChaChaSealer::new(keyring(&[&k1])).seal(d, &secret).unwrap();
        let rotated = XChaChaSealer::new(keyring(&[&k2, &k1]));
        assert_eq!(rotated.current_key_id(), "k2");
        assert_eq!(rotated.open(d, &old).unwrap(), secret);
        assert_eq!(rotated.seal(d, &secret).unwrap().key_id, "k2");
    }

    #[test]
    fn keyring_parsing_reports_what_is_wrong() {
        let k1 = MasterKeyring::generate_entry("k1").unwrap();
        let k2 = MasterKeyring::generate_entry("k2").unwrap();
        let ring = MasterKeyring::parse(&format!("# a comment, with a comma\n{k1}\n\n{k2}\n")).unwrap();
        assert_eq!(ring.key_ids(), ["k1", "k2"]);
        assert!(!format!("{ring:?}").contains(k1.split(':').nth(1).unwrap()));
        assert!(matches!(MasterKeyring::parse(""), Err(KeyringError::Empty)));
        assert!(matches!(
            MasterKeyring::parse("nocolon"),
            Err(KeyringError::Malformed(1))
        ));
        assert!(matches!(
            MasterKeyring::parse("bad id:AAAA"),
            Err(KeyringError::BadKeyId(_))
        ));
        assert!(matches!(
            MasterKeyring::parse("k1:AAAA"),
            Err(KeyringError::BadKey(_))
        ));
        assert!(matches!(
            MasterKeyring::parse(&format!("{k1},{k1}")),
            Err(KeyringError::Duplicate(_))
        ));
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn sealer() -> XChaChaSealer {
            // One keyring for every case: generating keys is not what is tested.
            static RING: std::sync::LazyLock<MasterKeyring> = std::sync::LazyLock::new(|| {
                let k1 = MasterKeyring::generate_entry("k1").unwrap();
                let k2 = MasterKeyring::generate_entry("k2").unwrap();
                keyring(&[&k1, &k2])
            });
            XChaChaSealer::new(RING.clone())
        }

        fn id(n: u128) -> DeviceId {
            DeviceId::from_uuid(Uuid::from_u128(n))
        }

        proptest! {
            /// Any secret sealed for a device opens, for that device, to
            /// itself.
            #[test]
            fn sealing_round_trips(secret in "\\PC{0,120}", device in any::<u128>()) {
                let sealer = sealer();
                let sealed = sealer.seal(id(device), &DeviceSecret::new(secret.clone())).unwrap();
                prop_assert_eq!(sealed.key_id.as_str(), "k1");
                let opened = sealer.open(id(device), &sealed).unwrap();
                prop_assert_eq!(opened.expose(), secret.as_str());
            }

            /// Changing any bit of the stored bytes (nonce, ciphertext or
            /// tag), cutting them short or lengthening them: it no longer
            /// opens.
            #[test]
            fn any_change_to_the_ciphertext_fails_to_open(
                secret in "eags_[A-Za-z0-9_-]{43}",
                device in any::<u128>(),
                at in any::<prop::sample::Index>(),
                bits in 1u8..=255,
                cut in any::<prop::sample::Index>(),
                extra in any::<u8>(),
            ) {
                let sealer = sealer();
                let d = id(device);
                let sealed = sealer.seal(d, &DeviceSecret::new(secret)).unwrap();
                let mut flipped = sealed.clone();
                let i = at.index(flipped.ciphertext.len());
                flipped.ciphertext[i] ^= bits;
                prop_assert!(matches!(sealer.open(d, &flipped), Err(OpenSecretError::Corrupt)));
                let mut short = sealed.clone();
                short.ciphertext.truncate(cut.index(sealed.ciphertext.len()));
                prop_assert!(matches!(sealer.open(d, &short), Err(OpenSecretError::Corrupt)));
                let mut long = sealed.clone();
                long.ciphertext.push(extra);
                prop_assert!(matches!(sealer.open(d, &long), Err(OpenSecretError::Corrupt)));
            }

            /// The associated data is the device id: opened as any other
            /// device — or under the other key's id — it fails.
            #[test]
            fn any_change_to_the_associated_data_or_key_fails_to_open(
                device in any::<u128>(),
                other in any::<u128>(),
            ) {
                prop_assume!(device != other);
                let sealer = sealer();
                let sealed = sealer.seal(id(device), &DeviceSecret::new("eags_x".into())).unwrap();
                prop_assert!(matches!(sealer.open(id(other), &sealed), Err(OpenSecretError::Corrupt)));
                let other_key = SealedSecret { key_id: "k2".into(), ..sealed };
                prop_assert!(matches!(sealer.open(id(device), &other_key), Err(OpenSecretError::Corrupt)));
            }
        }
    }
}
