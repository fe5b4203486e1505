//! HTTP tests through the real actix app against a real PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod api_keys;
mod attacks;
mod auth;
mod bad_input;
mod bundles;
mod cache;
mod configs;
mod device_auth;
mod device_contract;
mod devices;
mod helpers;
mod protection;
mod security;
mod signals;
mod surface;
