//! Adapter tests against a real PostgreSQL (see eagate-testkit for which).

mod accounts;
mod migrations;
