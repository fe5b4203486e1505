//! What the account use cases need from the outside world.
//!
//! Every method documents the errors an implementation must return; the
//! contract suites in [`crate::testing::contracts`] hold fakes and real
//! adapters to the same behaviour.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::error::{CreateUserError, InvalidAccessToken};
use super::model::{
    AccessClaims, AccessToken, LoginId, NewRefreshToken, NewUser, Password, PasswordHash, RefreshToken,
    RefreshTokenHash, RefreshTokenRecord, RevocationReason, Session, SessionId, User, UserCredentials,
    UserId,
};
use crate::audit::AuditEvent;
use crate::error::UnexpectedError;

/// Persistence of user accounts.
pub trait AccountRepository: Send + Sync + 'static {
    /// Stores a new user and its audit event in one transaction. Fails with
    /// `EmailTaken` / `UsernameTaken` when the email, or the username
    /// compared case-insensitively, is in use.
    fn create(
        &self,
        user: &NewUser,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<User, CreateUserError>> + Send;

    fn find_by_id(&self, id: UserId) -> impl Future<Output = Result<Option<User>, UnexpectedError>> + Send;

    /// Finds an account by email, or by username case-insensitively.
    fn find_credentials_by_login(
        &self,
        login: &LoginId,
    ) -> impl Future<Output = Result<Option<UserCredentials>, UnexpectedError>> + Send;

    fn find_credentials_by_id(
        &self,
        id: UserId,
    ) -> impl Future<Output = Result<Option<UserCredentials>, UnexpectedError>> + Send;

    /// Replaces the stored hash of the same password (rehash after a
    /// parameter upgrade). Returns `false` when the user does not exist.
    fn update_password_hash(
        &self,
        id: UserId,
        hash: &PasswordHash,
    ) -> impl Future<Output = Result<bool, UnexpectedError>> + Send;

    /// Sets a new password and, in the same transaction, revokes every
    /// session of the user (reason `PasswordChanged`) and stores the audit
    /// event. Returns `false` (storing nothing) when the user does not exist.
    fn change_password(
        &self,
        id: UserId,
        hash: &PasswordHash,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<bool, UnexpectedError>> + Send;

    /// Deletes the user and, by cascade, everything they own, storing the
    /// audit event (which outlives the account) in the same transaction.
    /// Returns `false` (storing nothing) when the user does not exist.
    fn delete(
        &self,
        id: UserId,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<bool, UnexpectedError>> + Send;
}

/// Login sessions and their rotating refresh tokens.
pub trait SessionRepository: Send + Sync + 'static {
    /// Stores a new session with its first refresh token and the login's
    /// audit event, in one transaction.
    fn create(
        &self,
        session: &Session,
        first_token: &NewRefreshToken,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<(), UnexpectedError>> + Send;

    fn find(&self, id: SessionId) -> impl Future<Output = Result<Option<Session>, UnexpectedError>> + Send;

    fn find_refresh_token(
        &self,
        hash: &RefreshTokenHash,
    ) -> impl Future<Output = Result<Option<RefreshTokenRecord>, UnexpectedError>> + Send;

    /// Atomically marks `old` as rotated at `at` and stores `new`, but only
    /// if `old` had not been rotated yet and its session is not revoked.
    /// Returns `false` (storing nothing) otherwise, so of two concurrent
    /// rotations of one token exactly one wins.
    fn rotate_refresh_token(
        &self,
        old: &RefreshTokenHash,
        new: &NewRefreshToken,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, UnexpectedError>> + Send;

    /// Revokes a session (idempotent: an already revoked session keeps its
    /// first revocation time and reason).
    fn revoke(
        &self,
        id: SessionId,
        at: DateTime<Utc>,
        reason: RevocationReason,
    ) -> impl Future<Output = Result<(), UnexpectedError>> + Send;
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordVerification {
    /// The password matches and the hash uses the current parameters.
    Valid,
    /// The password matches but the hash uses outdated parameters: store a
    /// fresh hash.
    ValidNeedsRehash,
    Invalid,
}

/// Slow, salted password hashing. Implementations keep the work off the
/// async executor and bound how much of it runs at once.
pub trait PasswordHasher: Send + Sync + 'static {
    fn hash(&self, password: &Password)
    -> impl Future<Output = Result<PasswordHash, UnexpectedError>> + Send;

    /// `Invalid` for a wrong password and for a hash this hasher cannot read.
    fn verify(
        &self,
        password: &Password,
        hash: &PasswordHash,
    ) -> impl Future<Output = Result<PasswordVerification, UnexpectedError>> + Send;

    /// Spends the same work as `verify` against a hash that matches no
    /// password, so an unknown login costs as much as a wrong password.
    fn verify_dummy(&self, password: &Password) -> impl Future<Output = Result<(), UnexpectedError>> + Send;
}

/// Signs and checks access tokens.
pub trait AccessTokenIssuer: Send + Sync + 'static {
    fn issue(&self, claims: &AccessClaims) -> Result<AccessToken, UnexpectedError>;

    /// Checks signature, algorithm, issuer, audience and that `now` lies
    /// within the token's lifetime.
    fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, InvalidAccessToken>;
}

/// Creates opaque refresh tokens and the digests they are stored under.
pub trait RefreshTokenFactory: Send + Sync + 'static {
    /// A new token with at least 256 bits from a CSPRNG.
    fn generate(&self) -> Result<RefreshToken, UnexpectedError>;

    /// A one-way digest, the same for the same token.
    fn digest(&self, token: &str) -> RefreshTokenHash;
}
