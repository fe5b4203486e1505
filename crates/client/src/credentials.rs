//! Local checks of a device's credentials, so a mistyped or truncated id or
//! secret is reported before a request is sent (the server would only say
//! `invalid-signature` or `malformed-header`).

/// What is wrong with a device id or secret. The messages never contain
/// the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error(
        "the device id must be the lowercase hyphenated UUID shown when the device was registered \
         (8-4-4-4-12 hex digits, e.g. 3f6c1a2e-8d4b-4c7e-9f10-2b3c4d5e6f70); got {0:?}"
    )]
    DeviceId(String),
    #[error("the device secret is malformed: {0}")]
    Secret(&'static str),
}

/// The length of a secret: `eags_` and 43 base64url characters.
pub const SECRET_LEN: usize = SECRET_PREFIX.len() + 43;
const SECRET_PREFIX: &str = "eags_";

/// Checks that `id` is a lowercase hyphenated UUID, as `X-Device-Id` needs.
pub fn check_device_id(id: &str) -> Result<(), CredentialsError> {
    let groups: Vec<&str> = id.split('-').collect();
    let lengths_ok = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12]);
    let digits_ok = groups.iter().all(|g| {
        g.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if lengths_ok && digits_ok {
        Ok(())
    } else {
        Err(CredentialsError::DeviceId(id.to_owned()))
    }
}

/// Checks that `secret` has the shape the server issues: `eags_` followed
/// by 43 characters of `A-Z a-z 0-9 - _`.
pub fn check_secret(secret: &str) -> Result<(), CredentialsError> {
    use CredentialsError::Secret;
    if secret.is_empty() {
        return Err(Secret("it is empty"));
    }
    if secret.trim() != secret {
        return Err(Secret(
            "it starts or ends with whitespace (a copied line break?); remove it",
        ));
    }
    let Some(body) = secret.strip_prefix(SECRET_PREFIX) else {
        return Err(Secret(
            "it must start with `eags_`; copy the whole secret shown when the device was registered or its secret rotated",
        ));
    };
    if !body
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Secret("after `eags_` only A-Z a-z 0-9 - _ may follow"));
    }
    match body.len() {
        43 => Ok(()),
        n if n < 43 => Err(Secret(
            "it is too short (`eags_` and 43 characters); was it cut off when copied?",
        )),
        _ => Err(Secret("it is too long (`eags_` and 43 characters)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "eags_TESTONLY-0123456789abcdefghijklmnopqrstuvwx";

    #[test]
    fn well_formed_credentials_pass() {
        assert_eq!(SECRET.len(), SECRET_LEN);
        assert_eq!(check_secret(SECRET), Ok(()));
        assert_eq!(check_device_id("3f6c1a2e-8d4b-4c7e-9f10-2b3c4d5e6f70"), Ok(()));
    }

    #[test]
    fn malformed_secrets_are_named_without_echoing_them() {
        let cases = [
            ("", "empty"),
            (" eags_TESTONLY-0123456789abcdefghijklmnopqrstuvwx", "whitespace"),
            ("eags_TESTONLY-0123456789abcdefghijklmnopqrstuvwx\n", "whitespace"),
            (
                "TESTONLY-0123456789abcdefghijklmnopqrstuvwx",
                "must start with `eags_`",
            ),
            ("eags_TESTONLY-0123456789abcdefghijklmnopqrstuvw", "too short"),
            ("eags_TESTONLY-0123456789abcdefghijklmnopqrstuvwxy", "too long"),
            (
                "eags_TESTONLY+0123456789abcdefghijklmnopqrstuvwx",
                "only A-Z a-z 0-9 - _",
            ),
            (
                "eags_TESTONLY-0123456789abcdefghijklmnopqrstuvw=",
                "only A-Z a-z 0-9 - _",
            ),
        ];
        for (secret, expected) in cases {
            let message = check_secret(secret).unwrap_err().to_string();
            assert!(message.contains(expected), "{secret:?}: {message}");
            if !secret.trim().is_empty() {
                assert!(
                    !message.contains(secret.trim()),
                    "the secret is not echoed: {message}"
                );
            }
        }
    }

    #[test]
    fn malformed_device_ids_are_refused() {
        for id in [
            "",
            "3F6C1A2E-8D4B-4C7E-9F10-2B3C4D5E6F70",
            "3f6c1a2e8d4b4c7e9f102b3c4d5e6f70",
            "3f6c1a2e-8d4b-4c7e-9f10-2b3c4d5e6f7",
            "3f6c1a2e-8d4b-4c7e-9f10-2b3c4d5e6f70 ",
            "{3f6c1a2e-8d4b-4c7e-9f10-2b3c4d5e6f70}",
            "3f6c1a2e-8d4b-4c7e-9f10-2b3c4d5e6g70",
        ] {
            let message = check_device_id(id).unwrap_err().to_string();
            assert!(message.contains("lowercase hyphenated UUID"), "{id:?}: {message}");
        }
    }
}
