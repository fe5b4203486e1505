//! Adapter tests against a real PostgreSQL (see eagate-testkit for which).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod admin;
mod api_keys;
mod bundles;
mod configs;
mod devices;
mod migrations;
mod signals;
