//! Loading (or, in development, generating) the access-token signing key
//! and the master keys that seal device secrets.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use eagate_crypto::{Ed25519Keys, HmacApiKeys, MasterKeyring};
use secrecy::ExposeSecret as _;

use crate::config::{ApiKeySecretSource, JwtKeySource, MasterKeySource, Settings};

/// Keys that cannot be read, parsed or written; says which variable or file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

const DEV_KEY_FILE: &str = "jwt-ed25519.pem";
const DEV_MASTER_KEYS_FILE: &str = "master-keys";
const DEV_API_KEY_SECRET_FILE: &str = "api-key-secret";

pub fn load(settings: &Settings) -> Result<Ed25519Keys, KeyError> {
    match &settings.auth.jwt_key {
        JwtKeySource::Pem(pem) => Ed25519Keys::from_pem(pem.expose_secret())
            .map_err(|e| KeyError(format!("EAGATE_JWT_PRIVATE_KEY: {e}"))),
        JwtKeySource::File(path) => {
            let pem = std::fs::read_to_string(path)
                .map_err(|e| KeyError(format!("EAGATE_JWT_PRIVATE_KEY_FILE={}: {e}", path.display())))?;
            Ed25519Keys::from_pem(&pem)
                .map_err(|e| KeyError(format!("EAGATE_JWT_PRIVATE_KEY_FILE={}: {e}", path.display())))
        }
        JwtKeySource::GeneratedInDataDir => load_or_generate(&settings.data_dir.join(DEV_KEY_FILE)),
    }
}

/// The keyring that seals device secrets.
pub fn load_master_keys(settings: &Settings) -> Result<MasterKeyring, KeyError> {
    let parse =
        |text: &str, source: &str| MasterKeyring::parse(text).map_err(|e| KeyError(format!("{source}: {e}")));
    match &settings.devices.master_keys {
        MasterKeySource::Inline(text) => parse(text.expose_secret(), "EAGATE_MASTER_KEYS"),
        MasterKeySource::File(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| KeyError(format!("EAGATE_MASTER_KEYS_FILE={}: {e}", path.display())))?;
            parse(&text, &format!("EAGATE_MASTER_KEYS_FILE={}", path.display()))
        }
        MasterKeySource::GeneratedInDataDir => {
            let path = settings.data_dir.join(DEV_MASTER_KEYS_FILE);
            let text = load_or_create_private_file(&path, "development master keys", || {
                MasterKeyring::generate_entry("dev1")
                    .map(|entry| format!("# eagate development master keys, current first\n{entry}\n"))
                    .map_err(|e| e.to_string())
            })?;
            parse(&text, &path.display().to_string())
        }
    }
}

/// The keyed hash of API keys, under `EAGATE_API_KEY_SECRET`.
pub fn load_api_keys(settings: &Settings) -> Result<HmacApiKeys, KeyError> {
    let parse = |text: &str, source: &str| {
        HmacApiKeys::from_base64url(text).map_err(|e| KeyError(format!("{source}: {e}")))
    };
    match &settings.auth.api_key_secret {
        ApiKeySecretSource::Inline(text) => parse(text.expose_secret(), "EAGATE_API_KEY_SECRET"),
        ApiKeySecretSource::File(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| KeyError(format!("EAGATE_API_KEY_SECRET_FILE={}: {e}", path.display())))?;
            parse(&text, &format!("EAGATE_API_KEY_SECRET_FILE={}", path.display()))
        }
        ApiKeySecretSource::GeneratedInDataDir => {
            let path = settings.data_dir.join(DEV_API_KEY_SECRET_FILE);
            let text = load_or_create_private_file(&path, "development API key secret", || {
                HmacApiKeys::generate_secret()
                    .map(|secret| format!("{secret}\n"))
                    .map_err(|e| e.to_string())
            })?;
            parse(&text, &path.display().to_string())
        }
    }
}

fn load_or_generate(path: &Path) -> Result<Ed25519Keys, KeyError> {
    let pem = load_or_create_private_file(path, "development JWT signing key", || {
        Ed25519Keys::generate()
            .map(|k| k.to_pem())
            .map_err(|e| e.to_string())
    })?;
    Ed25519Keys::from_pem(&pem).map_err(|e| KeyError(format!("parsing {}: {e}", path.display())))
}

/// Reads a secret file, first creating it (mode 0600) from `create` when it
/// does not exist.
fn load_or_create_private_file(
    path: &Path,
    what: &str,
    create: impl FnOnce() -> Result<String, String>,
) -> Result<String, KeyError> {
    let failed =
        |doing: &str, e: &dyn std::fmt::Display| KeyError(format!("{doing} {}: {e}", path.display()));
    if path.exists() {
        let mode = std::fs::metadata(path)
            .map_err(|e| failed("reading", &e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "{what} file is readable by others");
        }
        return std::fs::read_to_string(path).map_err(|e| failed("reading", &e));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| failed("creating the directory of", &e))?;
    }
    let content = create().map_err(|e| failed("generating", &e))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| failed("creating", &e))?;
    file.write_all(content.as_bytes())
        .map_err(|e| failed("writing", &e))?;
    tracing::warn!(path = %path.display(), "generated {what}; production requires them to be configured");
    Ok(content)
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

    #[test]
    fn the_api_key_secret_is_generated_in_development_and_checked_when_given() {
        use eagate_domain::access::ApiKeyFactory as _;
        let dir = std::env::temp_dir().join(format!("eagate-aks-{}", uuid::Uuid::new_v4()));
        let mut vars = std::collections::HashMap::new();
        vars.insert("EAGATE_DATA_DIR".to_owned(), dir.display().to_string());
        let settings = Settings::from_vars(&vars).unwrap();
        let first = load_api_keys(&settings).unwrap();
        let path = dir.join(DEV_API_KEY_SECRET_FILE);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let key = first.generate().unwrap();
        let second = load_api_keys(&settings).unwrap();
        assert_eq!(
            second.hash(key.secret.expose()),
            Some(key.hash),
            "the same secret is reused"
        );
        std::fs::remove_dir_all(dir).unwrap();
        vars.insert("EAGATE_API_KEY_SECRET".to_owned(), "c2hvcnQ".to_owned());
        let err = load_api_keys(&Settings::from_vars(&vars).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("EAGATE_API_KEY_SECRET") && err.contains("at least 32 bytes"),
            "{err}"
        );
    }

    #[test]
    fn development_master_keys_are_generated_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("eagate-mk-{}", uuid::Uuid::new_v4()));
        let mut vars = std::collections::HashMap::new();
        vars.insert("EAGATE_DATA_DIR".to_owned(), dir.display().to_string());
        let settings = Settings::from_vars(&vars).unwrap();
        let first = load_master_keys(&settings).unwrap();
        let path = dir.join(DEV_MASTER_KEYS_FILE);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let second = load_master_keys(&settings).unwrap();
        assert_eq!(first.key_ids(), ["dev1"]);
        assert_eq!(format!("{first:?}"), format!("{second:?}"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
