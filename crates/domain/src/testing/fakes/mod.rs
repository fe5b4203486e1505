//! In-memory fakes of every port, one module per concept.
//!
//! The repository fakes share one [`InMemoryStore`], so cascades and
//! cross-table updates behave as in PostgreSQL. Crypto fakes are
//! transparent (readable outputs) and deterministic.

mod account;
mod audit;
mod clock;
mod device;
mod nonce;
mod password;
mod secrets;
mod session;
mod signal;
mod store;
mod tokens;
mod wakeups;
mod world;

pub use account::InMemoryAccountRepository;
pub use audit::InMemoryAuditLog;
pub use clock::{FixedClock, SequentialIds};
pub use device::InMemoryDeviceRepository;
pub use nonce::FakeNonceStore;
pub use password::FakeHasher;
pub use secrets::{FakeDeviceSecrets, FakeSealer, FakeVerifier, fake_mac};
pub use session::InMemorySessionRepository;
pub use signal::InMemorySignalRepository;
pub use store::InMemoryStore;
pub use tokens::{FakeAccessTokens, FakeRefreshTokens};
pub use wakeups::{FakeSubscription, FakeWakeups};
pub use world::{FakeAccountService, FakeAccountWorld, FakeDeviceService};
