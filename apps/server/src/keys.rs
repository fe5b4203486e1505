//! Loading (or, in development, generating) the access-token signing key.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use eagate_crypto::Ed25519Keys;
use secrecy::ExposeSecret as _;

use crate::config::{JwtKeySource, Settings};
use crate::startup::StartupError;

const DEV_KEY_FILE: &str = "jwt-ed25519.pem";

pub fn load(settings: &Settings) -> Result<Ed25519Keys, StartupError> {
    match &settings.auth.jwt_key {
        JwtKeySource::Pem(pem) => Ed25519Keys::from_pem(pem.expose_secret())
            .map_err(|e| StartupError::Keys(format!("EAGATE_JWT_PRIVATE_KEY: {e}"))),
        JwtKeySource::File(path) => {
            let pem = std::fs::read_to_string(path).map_err(|e| {
                StartupError::Keys(format!("EAGATE_JWT_PRIVATE_KEY_FILE={}: {e}", path.display()))
            })?;
            Ed25519Keys::from_pem(&pem).map_err(|e| {
                StartupError::Keys(format!("EAGATE_JWT_PRIVATE_KEY_FILE={}: {e}", path.display()))
            })
        }
        JwtKeySource::GeneratedInDataDir => load_or_generate(&settings.data_dir.join(DEV_KEY_FILE)),
    }
}

fn load_or_generate(path: &Path) -> Result<Ed25519Keys, StartupError> {
    let failed =
        |what: &str, e: &dyn std::fmt::Display| StartupError::Keys(format!("{what} {}: {e}", path.display()));
    if path.exists() {
        let mode = std::fs::metadata(path)
            .map_err(|e| failed("reading", &e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "signing key is readable by others");
        }
        let pem = std::fs::read_to_string(path).map_err(|e| failed("reading", &e))?;
        return Ed25519Keys::from_pem(&pem).map_err(|e| failed("parsing", &e));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| failed("creating the directory of", &e))?;
    }
    let keys = Ed25519Keys::generate().map_err(|e| failed("generating", &e))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| failed("creating", &e))?;
    file.write_all(keys.to_pem().as_bytes())
        .map_err(|e| failed("writing", &e))?;
    tracing::warn!(
        path = %path.display(),
        "generated a development JWT signing key; production requires EAGATE_JWT_PRIVATE_KEY(_FILE)"
    );
    Ok(keys)
}

/// The JWK set publishing `keys`' public half.
pub fn jwks(keys: &Ed25519Keys) -> serde_json::Value {
    serde_json::json!({
        "keys": [{
            "kty": "OKP",
            "crv": "Ed25519",
            "alg": "EdDSA",
            "use": "sig",
            "kid": keys.key_id(),
            "x": keys.public_key_x(),
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_is_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("eagate-keys-{}", uuid::Uuid::new_v4()));
        let path = dir.join(DEV_KEY_FILE);
        let first = load_or_generate(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let second = load_or_generate(&path).unwrap();
        assert_eq!(first.key_id(), second.key_id());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
