//! The [`PasswordHasher`] contract. `older` is a hasher with other (older)
//! parameters, whose hashes the current one must still verify and flag
//! for a rehash. How slow hashing is, and the bound on concurrent work, are
//! the adapter's own tests.

use crate::account::*;

fn password(text: &str) -> Password {
    Password::parse_new(text, "password", &[]).expect("a valid password")
}

async fn hash(hasher: &impl PasswordHasher, p: &Password) -> PasswordHash {
    hasher.hash(p).await.expect("hash failed")
}

async fn verify(hasher: &impl PasswordHasher, p: &Password, h: &PasswordHash) -> PasswordVerification {
    hasher.verify(p, h).await.expect("verify must answer, not fail")
}

pub async fn a_hash_verifies_its_password(hasher: &impl PasswordHasher, _older: &impl PasswordHasher) {
    let p = password("correct horse battery");
    let h = hash(hasher, &p).await;
    assert_eq!(
        verify(hasher, &p, &h).await,
        PasswordVerification::Valid,
        "a fresh hash must verify its own password as Valid"
    );
}

pub async fn a_wrong_password_is_invalid(hasher: &impl PasswordHasher, _older: &impl PasswordHasher) {
    let h = hash(hasher, &password("correct horse battery")).await;
    for wrong in [
        "correct horse battery ",
        "Correct horse battery",
        "another password",
    ] {
        assert_eq!(
            verify(hasher, &password(wrong), &h).await,
            PasswordVerification::Invalid,
            "{wrong:?} must not verify against another password's hash"
        );
    }
}

pub async fn an_unreadable_hash_is_invalid_not_an_error(
    hasher: &impl PasswordHasher,
    _older: &impl PasswordHasher,
) {
    let p = password("correct horse battery");
    for stored in [
        "",
        "correct horse battery",
        "$argon2id$v=19$m=19456,t=2,p=1$bm90LWEtc2FsdA$broken",
        "fake$1$",
        "$2b$12$abcdefghijklmnopqrstuv",
    ] {
        assert_eq!(
            verify(hasher, &p, &PasswordHash::new(stored.to_owned())).await,
            PasswordVerification::Invalid,
            "a stored hash this hasher cannot read ({stored:?}) must verify as Invalid"
        );
    }
}

pub async fn a_hash_does_not_contain_the_password(
    hasher: &impl PasswordHasher,
    _older: &impl PasswordHasher,
) {
    let text = "correct horse battery";
    let h = hash(hasher, &password(text)).await;
    assert!(
        !h.as_str().contains(text),
        "a stored hash must not reveal the password"
    );
}

pub async fn hashes_of_one_password_differ(hasher: &impl PasswordHasher, _older: &impl PasswordHasher) {
    let p = password("correct horse battery");
    let (a, b) = (hash(hasher, &p).await, hash(hasher, &p).await);
    assert_ne!(
        a, b,
        "hashing must be salted: two hashes of one password must differ"
    );
    assert_eq!(
        verify(hasher, &p, &b).await,
        PasswordVerification::Valid,
        "both verify"
    );
}

pub async fn a_hash_with_older_parameters_verifies_and_asks_for_a_rehash(
    hasher: &impl PasswordHasher,
    older: &impl PasswordHasher,
) {
    let p = password("correct horse battery");
    let old = hash(older, &p).await;
    assert_eq!(
        verify(hasher, &p, &old).await,
        PasswordVerification::ValidNeedsRehash,
        "a hash made with other parameters must verify and ask for a rehash"
    );
    assert_eq!(
        verify(hasher, &password("another password"), &old).await,
        PasswordVerification::Invalid,
        "a wrong password against an old hash is still Invalid"
    );
}

pub async fn a_dummy_verification_succeeds(hasher: &impl PasswordHasher, _older: &impl PasswordHasher) {
    let result = hasher.verify_dummy(&password("correct horse battery")).await;
    assert!(
        result.is_ok(),
        "verify_dummy must succeed (it only spends the work), got {result:?}"
    );
}

/// Runs every rule in order; prefer
/// [`password_hasher_contract!`](crate::password_hasher_contract), which
/// gives each rule a test of its own.
pub async fn password_hasher_contract(hasher: &impl PasswordHasher, older: &impl PasswordHasher) {
    a_hash_verifies_its_password(hasher, older).await;
    a_wrong_password_is_invalid(hasher, older).await;
    an_unreadable_hash_is_invalid_not_an_error(hasher, older).await;
    a_hash_does_not_contain_the_password(hasher, older).await;
    hashes_of_one_password_differ(hasher, older).await;
    a_hash_with_older_parameters_verifies_and_asks_for_a_rehash(hasher, older).await;
    a_dummy_verification_succeeds(hasher, older).await;
}

/// One `#[tokio::test]` per [`PasswordHasher`] rule, in a module
/// `password_hasher_contract`. `$setup`: an async block returning
/// `(guard, hasher, older)`, `older` hashing with other parameters.
#[macro_export]
macro_rules! password_hasher_contract {
    ($setup:expr) => {
        $crate::__contract_cases!(
            password_hasher_contract,
            password,
            $setup,
            (hasher, older),
            [
                a_hash_verifies_its_password,
                a_wrong_password_is_invalid,
                an_unreadable_hash_is_invalid_not_an_error,
                a_hash_does_not_contain_the_password,
                hashes_of_one_password_differ,
                a_hash_with_older_parameters_verifies_and_asks_for_a_rehash,
                a_dummy_verification_succeeds,
            ]
        );
    };
}
