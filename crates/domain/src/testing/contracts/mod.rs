//! Port contract suites: what every implementation of a port must do, run
//! against the fakes in this crate and against the real adapters in theirs,
//! so fake and real cannot drift.
//!
//! One module per port. Each rule of a contract is its own `pub async fn`,
//! generic over the port, that asserts with a message saying what broke.
//! Each module also exports a macro that expands to one `#[tokio::test]`
//! per rule for a given implementation, so a broken rule fails its own
//! named test and never hides the others:
//!
//! ```ignore
//! eagate_domain::replay_guard_contract!(async { ((), RedisReplayGuard::new(...)) });
//! // → tests replay_guard_contract::a_new_nonce_is_admitted, ...
//! ```
//!
//! The argument is an async block that builds fresh ports for one rule and
//! returns them in a tuple after a *guard* (anything that must live while
//! the rule runs, e.g. the test database; `()` when there is none). It is
//! evaluated once per rule. The generated tests sit in a module named like
//! the macro, which sees the caller's imports (`use super::*`).
//!
//! Rules make their own users, devices and keys (unique names), so they do
//! not depend on what the store holds; the `*_contract` functions that run
//! every rule in order on one set of ports rely on that.
//!
//! Adding a rule: a `pub async fn` in the port's module, listed in its
//! macro and called by its `*_contract` function (a unit test below fails
//! otherwise). Adding a port: a module of the same shape (`pub mod` here),
//! its macro invoked for the fake in `testing/fakes/mod.rs` and for each
//! real adapter in that adapter's tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod account;
pub mod admin;
pub mod api_key_factory;
pub mod api_keys;
pub mod audit;
pub mod bundle;
pub mod cache;
pub mod config;
pub mod deployment;
pub mod device;
pub mod fixtures;
pub mod nonce;
pub mod password;
pub mod ratelimit;
pub mod secrets;
pub mod session;
pub mod signal;
pub mod tokens;
pub mod wakeups;

pub use account::account_repository_contract;
pub use admin::admin_repository_contract;
pub use api_key_factory::api_key_factory_contract;
pub use api_keys::api_key_repository_contract;
pub use audit::audit_log_contract;
pub use bundle::bundle_store_contract;
pub use cache::device_cache_contract;
pub use config::config_repository_contract;
pub use deployment::deployment_repository_contract;
pub use device::device_repository_contract;
pub use fixtures::{audit_event, new_user};
pub use nonce::replay_guard_contract;
pub use ratelimit::rate_limiter_contract;
pub use session::session_repository_contract;
pub use signal::signal_repository_contract;

/// Expands to `mod $test_mod { one #[tokio::test] per rule }`, each test
/// building its ports with `$setup` and calling
/// `contracts::$contract::$rule(&port, ...)`. Used by the contract macros.
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_cases {
    ($test_mod:ident, $contract:ident, $setup:expr, $ports:tt, [$($rule:ident),+ $(,)?]) => {
        mod $test_mod {
            #[allow(unused_imports)]
            use super::*;
            $( $crate::__contract_case!($contract, $rule, $setup, $ports); )+
        }
    };
}

/// One rule's `#[tokio::test]`; see [`__contract_cases!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_case {
    ($contract:ident, $rule:ident, $setup:expr, ($($port:ident),+)) => {
        #[::tokio::test]
        async fn $rule() {
            let (_guard, $($port),+) = $setup.await;
            $crate::testing::contracts::$contract::$rule($(&$port),+).await;
        }
    };
}

#[cfg(test)]
mod tests {
    /// Names of the `pub async fn`s in a contract module's source: the rules
    /// and the all-rules functions (named `*_contract`).
    fn async_fns(source: &str) -> Vec<&str> {
        source
            .lines()
            .filter_map(|l| l.strip_prefix("pub async fn "))
            .filter_map(|rest| rest.split(['(', '<']).next())
            .collect()
    }

    /// The bodies of the all-rules functions (`pub async fn *_contract`).
    fn all_rules_bodies(source: &str) -> Vec<&str> {
        source
            .split("\npub async fn ")
            .skip(1)
            .filter(|f| {
                f.split(['(', '<'])
                    .next()
                    .is_some_and(|n| n.ends_with("_contract"))
            })
            .map(|f| f.split("\n}\n").next().unwrap_or(f))
            .collect()
    }

    /// The rule lists (`[a, b, ...]`) of the macros in a contract module.
    fn macro_lists(source: &str) -> Vec<Vec<&str>> {
        source
            .split("macro_rules! ")
            .skip(1)
            .map(|m| {
                let start = m.find('[').expect("a macro's rule list") + 1;
                let end = start + m[start..].find(']').expect("the end of a rule list");
                m[start..end]
                    .split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .collect()
            })
            .collect()
    }

    /// Whether `body` calls `name(` (not a longer name ending in it).
    fn calls(body: &str, name: &str) -> bool {
        let call = format!("{name}(");
        body.match_indices(&call).any(|(i, _)| {
            !body[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    }

    /// A rule that is written but missing from its macro or its all-rules
    /// function would silently never run: this catches it.
    #[test]
    fn every_rule_is_run_by_exactly_one_macro_and_one_all_rules_function() {
        // Every contract module, new ones included.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/testing/contracts");
        let mut modules: Vec<(String, String)> = std::fs::read_dir(&dir)
            .expect("reading the contracts directory")
            .map(|entry| entry.expect("a directory entry").path())
            .filter(|path| path.extension().is_some_and(|e| e == "rs"))
            .map(|path| {
                let module = path.file_stem().unwrap().to_string_lossy().into_owned();
                (
                    module,
                    std::fs::read_to_string(&path).expect("reading a contract module"),
                )
            })
            .filter(|(module, _)| module != "mod" && module != "fixtures")
            .collect();
        modules.sort();
        let names: Vec<&str> = modules.iter().map(|(m, _)| m.as_str()).collect();
        assert!(names.len() >= 12, "found only {names:?} in {}", dir.display());
        let mut problems = Vec::new();
        for (module, source) in &modules {
            let rules: Vec<&str> = async_fns(source)
                .into_iter()
                .filter(|f| !f.ends_with("_contract"))
                .collect();
            assert!(!rules.is_empty(), "{module}: no rules found");
            let lists = macro_lists(source);
            let bodies = all_rules_bodies(source);
            for rule in &rules {
                let listed = lists.iter().filter(|l| l.contains(rule)).count();
                if listed != 1 {
                    problems.push(format!("{module}::{rule} is listed by {listed} macros, not 1"));
                }
                let run = bodies.iter().filter(|b| calls(b, rule)).count();
                if run != 1 {
                    problems.push(format!(
                        "{module}::{rule} is run by {run} all-rules functions, not 1"
                    ));
                }
            }
            for list in &lists {
                for listed in list {
                    if !rules.contains(listed) {
                        problems.push(format!("{module}: a macro lists {listed}, which is no rule"));
                    }
                }
            }
        }
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
