use eagate_protocol::{RequestSignature, SigningKey, sign_request};

/// A random nonce: 32 lowercase hex characters (128 bits) from the OS.
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // Without an OS RNG no nonce is safe; refuse loudly.
        panic!("the operating system's random number generator failed");
    }
    eagate_protocol::hex(&bytes)
}

/// Signs requests for one device. Usable without any HTTP library.
#[derive(Debug, Clone)]
pub struct Signer {
    device_id: String,
    key: SigningKey,
}

impl Signer {
    /// `secret` is the `eags_…` string shown when the device was registered.
    pub fn new(device_id: &str, secret: &str) -> Self {
        Self {
            device_id: device_id.to_owned(),
            key: SigningKey::new(secret),
        }
    }

    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// Signs `method target` (`target` = path and query exactly as they go
    /// on the request line) with `body`, at `unix_seconds`, with `nonce`.
    pub fn sign(
        &self,
        method: &str,
        target: &str,
        body: &[u8],
        unix_seconds: i64,
        nonce: &str,
    ) -> RequestSignature {
        sign_request(
            &self.key,
            method,
            target,
            &self.device_id,
            unix_seconds,
            nonce,
            body,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_vectors_hold_through_the_sdk() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../../docs/protocol-vectors.json")).unwrap();
        let signer = Signer::new(
            doc["device_id"].as_str().unwrap(),
            doc["secret"].as_str().unwrap(),
        );
        for v in doc["vectors"].as_array().unwrap() {
            let s = |k: &str| v[k].as_str().unwrap();
            let signed = signer.sign(
                s("method"),
                s("request_target"),
                s("body").as_bytes(),
                s("timestamp").parse().unwrap(),
                s("nonce"),
            );
            assert_eq!(signed.signature, s("signature"), "{}", s("name"));
            assert_eq!(signed.device_id, s("device_id"));
            assert_eq!(signed.timestamp, s("timestamp"));
        }
    }

    #[test]
    fn nonces_are_valid_and_fresh() {
        let a = new_nonce();
        assert!(eagate_protocol::is_valid_nonce(&a));
        assert_ne!(a, new_nonce());
    }
}
