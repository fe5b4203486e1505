//! Access control: roles, API keys and their scopes, and the one policy
//! that decides who may do what ([`authorize`]).

pub mod admin;
pub mod error;
pub mod model;
pub mod policy;
pub mod ports;
pub mod service;

pub use admin::*;
pub use error::*;
pub use model::*;
pub use policy::*;
pub use ports::*;
pub use service::{
    ApiKeyPolicy, ApiKeyService, ApiKeyUsage, CreateApiKeyInput, CreatedApiKey, ValidApiKeyInput,
};
