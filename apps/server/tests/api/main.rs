//! HTTP tests through the real actix app against a real PostgreSQL.

mod auth;
mod bad_input;
mod helpers;
mod security;
