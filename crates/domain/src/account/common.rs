//! Refusing common passwords (OWASP ASVS 5.0 V6.2.4): a new password may
//! not be one of the ~28,000 most common leaked passwords, nor one of them
//! with a short run of digits or symbols around it (`password1234`), nor a
//! trivial pattern (one character repeated, a run like `123456789012`), nor
//! contain the account's own names (V6.2.11's context-specific words).

use std::collections::HashSet;
use std::sync::LazyLock;

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common-passwords.txt")
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
});

/// Words no password of this service should be built on.
const SERVICE_WORDS: [&str; 4] = ["eagate", "metatrader", "expertadvisor", "mql5"];

/// Strips up to six digits and symbols from each end (what people add to
/// a common word to pass a length rule).
fn core(password: &str) -> &str {
    let padding = |c: char| c.is_ascii_digit() || c.is_ascii_punctuation() || c == ' ';
    let mut s = password;
    for _ in 0..6 {
        s = s.strip_suffix(padding).unwrap_or(s);
        s = s.strip_prefix(padding).unwrap_or(s);
    }
    s
}

/// Whether the characters step by one throughout (`abcdef…`, `987654…`;
/// digits wrap: `…7890123`).
fn is_run(password: &str) -> bool {
    let chars: Vec<char> = password.chars().collect();
    let next = |a: char, b: char| u32::from(b) == u32::from(a) + 1 || (a == '9' && b == '0');
    chars.windows(2).all(|w| next(w[0], w[1])) || chars.windows(2).all(|w| next(w[1], w[0]))
}

/// Why `password` is too guessable, if it is. `names` are the account's
/// own (username, email); each is refused inside the password when it has
/// four characters or more.
pub fn weakness(password: &str, names: &[&str]) -> Option<&'static str> {
    let lower = password.to_lowercase();
    let compact: String = lower.chars().filter(|c| !c.is_whitespace()).collect();
    let distinct = {
        let mut chars: Vec<char> = compact.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        chars.len()
    };
    if distinct <= 3 || is_run(&compact) {
        return Some("is a trivial pattern");
    }
    let core = core(&compact);
    if COMMON.contains(compact.as_str()) || (core.chars().count() >= 6 && COMMON.contains(core)) {
        return Some("is one of the most common passwords");
    }
    if SERVICE_WORDS.contains(&core) {
        return Some("is the name of the service");
    }
    let mine = names
        .iter()
        .map(|n| n.to_lowercase())
        .flat_map(|n| {
            let local = n.split('@').next().unwrap_or_default().to_owned();
            [n, local]
        })
        .filter(|n| n.chars().count() >= 4);
    for name in mine {
        if compact.contains(&name) {
            return Some("contains the account's username or email");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_loaded() {
        assert!(COMMON.len() > 27_000, "{}", COMMON.len());
        assert!(COMMON.contains("password") && COMMON.contains("qwertyuiop"));
    }

    #[test]
    fn common_passwords_and_their_padded_forms_are_refused() {
        for weak in [
            "password1234",
            "Password1234!",
            "qwertyuiop123",
            "1qaz2wsx3edc",
            "123qweasdzxc",
            "2024!iloveyou!",
            "aaaaaaaaaaaa",
            "abababababab",
            "123456789012",
            "abcdefghijklmn",
            "zyxwvutsrqpo",
            "eagate123456",
        ] {
            assert!(weakness(weak, &[]).is_some(), "{weak} must be refused");
        }
    }

    #[test]
    fn the_accounts_own_names_are_refused_inside_a_password() {
        assert_eq!(
            weakness("my ann_trader passphrase", &["ann_trader", "ann@example.com"]),
            Some("contains the account's username or email")
        );
        assert!(weakness("xx-ann@example.com-xx", &["someone", "ann@example.com"]).is_some());
        assert!(
            weakness("annabelle is long enough", &["ann", "ann@x.io"]).is_none(),
            "3-letter names are too short to refuse"
        );
    }

    #[test]
    fn ordinary_passphrases_pass() {
        for ok in [
            "correct horse battery staple",
            "a long enough password",
            "Tr0ub4dor&3 but longer",
            "zebra-lantern-quartz-7",
            "сложный пароль для счёта",
        ] {
            assert_eq!(weakness(ok, &["ann", "ann@example.com"]), None, "{ok}");
        }
    }
}
