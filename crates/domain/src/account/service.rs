//! The account use cases.

use chrono::{DateTime, Duration, Utc};
use tracing::instrument;

use super::error::*;
use super::model::*;
use super::ports::*;
use crate::audit::{AuditAction, AuditEvent, AuditLog, ClientInfo};
use crate::clock::Clock;
use crate::error::UnexpectedError;
use crate::id::IdGenerator;
use crate::ratelimit::{RateDecision, RateLimit, RateLimiter};
use crate::validation::ValidationErrors;

/// Token lifetimes and the password-guessing budget.
#[derive(Debug, Clone, Copy)]
pub struct AccountPolicy {
    pub access_token_ttl: Duration,
    /// How long a refresh token lives unused: each refresh starts a new one
    /// (sliding), but never past `session_max_lifetime`.
    pub refresh_token_ttl: Duration,
    /// How long a session (a login) lives at most, however often it is
    /// refreshed; then the user logs in again.
    pub session_max_lifetime: Duration,
    /// Password checks per account (login, password change, account
    /// deletion; right or wrong), counted before each check: a burst of
    /// guesses gets this many verdicts, then 429 until the window ends.
    pub password_checks: RateLimit,
}

impl Default for AccountPolicy {
    fn default() -> Self {
        Self {
            access_token_ttl: Duration::minutes(15),
            refresh_token_ttl: Duration::days(30),
            session_max_lifetime: Duration::days(90),
            password_checks: RateLimit::per_minute(5),
        }
    }
}

/// Why a password check was not made.
enum Budget {
    Exhausted(RateDecision),
    Unexpected(UnexpectedError),
}

/// Registration, login, sessions, password change and deletion.
#[derive(Debug, Clone)]
pub struct AccountService<A, S, H, T, R, L, G, C, I> {
    accounts: A,
    sessions: S,
    hasher: H,
    access_tokens: T,
    refresh_tokens: R,
    audit: L,
    guesses: G,
    clock: C,
    ids: I,
    policy: AccountPolicy,
}

/// Which budget a password check counts against: the account when the
/// login names one (whichever of its names was typed), else the canonical
/// login (so an unknown login is throttled exactly like a known one; text
/// that can name no account shares one budget, as it can never succeed).
/// Rate limiters keep only digests of keys.
fn guess_key(account: Option<UserId>, login: Option<&LoginId>) -> String {
    match (account, login) {
        (Some(id), _) => format!("password-checks:{id}"),
        (None, Some(LoginId::Email(email))) => format!("password-checks:email:{}", email.as_str()),
        (None, Some(LoginId::Username(name))) => {
            format!("password-checks:username:{}", name.as_str().to_lowercase())
        }
        (None, None) => "password-checks:unnamed".to_owned(),
    }
}

impl<A, S, H, T, R, L, G, C, I> AccountService<A, S, H, T, R, L, G, C, I>
where
    A: AccountRepository,
    S: SessionRepository,
    H: PasswordHasher,
    T: AccessTokenIssuer,
    R: RefreshTokenFactory,
    L: AuditLog,
    G: RateLimiter,
    C: Clock,
    I: IdGenerator,
{
    /// `guesses` counts password checks per account (see
    /// [`AccountPolicy::password_checks`]); share it between instances.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        accounts: A,
        sessions: S,
        hasher: H,
        access_tokens: T,
        refresh_tokens: R,
        audit: L,
        guesses: G,
        clock: C,
        ids: I,
        policy: AccountPolicy,
    ) -> Self {
        Self {
            accounts,
            sessions,
            hasher,
            access_tokens,
            refresh_tokens,
            audit,
            guesses,
            clock,
            ids,
            policy,
        }
    }

    /// Counts one password check against `key` before it is made: `Err`
    /// with the decision when the budget is used up (no check is made).
    async fn count_password_check(&self, key: &str) -> Result<(), Budget> {
        let decision = self
            .guesses
            .hit(key, self.policy.password_checks)
            .await
            .map_err(Budget::Unexpected)?;
        if decision.allowed {
            Ok(())
        } else {
            tracing::info!("password check refused: the account's budget is used up");
            Err(Budget::Exhausted(decision))
        }
    }

    pub fn policy(&self) -> &AccountPolicy {
        &self.policy
    }

    fn audit_event(&self, action: AuditAction, user: Option<UserId>, client: &ClientInfo) -> AuditEvent {
        AuditEvent {
            id: self.ids.new_id(),
            occurred_at: self.clock.now(),
            action,
            user_id: user,
            device_id: None,
            client: client.clone(),
            details: Default::default(),
        }
    }

    /// The user's security events, newest first.
    #[instrument(skip_all, fields(user_id = %who.user_id))]
    pub async fn audit_trail(
        &self,
        who: AuthenticatedUser,
        limit: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<crate::pagination::Page<AuditEvent>, ListAuditError> {
        let page = crate::pagination::PageRequest::parse(limit, cursor).map_err(|errors| {
            let mut all = ValidationErrors::new();
            errors.into_iter().for_each(|e| all.push(e));
            ListAuditError::Invalid(all)
        })?;
        Ok(self.audit.list_for_user(who.user_id, &page).await?)
    }

    /// Creates an account.
    #[instrument(skip_all, fields(username = %registration.username))]
    pub async fn register(
        &self,
        registration: Registration,
        client: &ClientInfo,
    ) -> Result<User, RegisterError> {
        let password_hash = self.hasher.hash(&registration.password).await?;
        let new_user = NewUser {
            id: UserId::from_uuid(self.ids.new_id()),
            username: registration.username,
            email: registration.email,
            password_hash,
            created_at: self.clock.now(),
        };
        let audit = self.audit_event(AuditAction::AccountRegistered, Some(new_user.id), client);
        let user = self
            .accounts
            .create(&new_user, &audit)
            .await
            .map_err(|e| match e {
                CreateUserError::EmailTaken => RegisterError::EmailTaken,
                CreateUserError::UsernameTaken => RegisterError::UsernameTaken,
                CreateUserError::Unexpected(e) => RegisterError::Unexpected(e),
            })?;
        tracing::info!(user_id = %user.id, "account registered");
        Ok(user)
    }

    /// Checks a password and opens a new session. An unknown login and a
    /// wrong password fail identically, after the same hashing work.
    #[instrument(skip_all)]
    pub async fn login(
        &self,
        attempt: LoginAttempt,
        client: &ClientInfo,
    ) -> Result<(User, TokenPair), LoginError> {
        let credentials = match &attempt.login {
            Some(login) => self.accounts.find_credentials_by_login(login).await?,
            None => None,
        };
        let key = guess_key(credentials.as_ref().map(|c| c.user.id), attempt.login.as_ref());
        self.count_password_check(&key).await.map_err(|b| match b {
            Budget::Exhausted(decision) => LoginError::TooManyAttempts(decision),
            Budget::Unexpected(e) => LoginError::Unexpected(e),
        })?;
        let Some(credentials) = credentials else {
            self.hasher.verify_dummy(&attempt.password).await?;
            // The attempted login text is not recorded: users type passwords
            // into login fields.
            self.audit
                .record(&self.audit_event(AuditAction::LoginFailed, None, client))
                .await?;
            return Err(LoginError::InvalidCredentials);
        };
        let user = credentials.user;
        match self
            .hasher
            .verify(&attempt.password, &credentials.password_hash)
            .await?
        {
            PasswordVerification::Invalid => {
                tracing::info!(user_id = %user.id, "login failed: wrong password");
                let event = self.audit_event(AuditAction::LoginFailed, Some(user.id), client);
                self.audit.record(&event).await?;
                return Err(LoginError::InvalidCredentials);
            }
            PasswordVerification::ValidNeedsRehash => self.rehash(&user, &attempt.password).await,
            PasswordVerification::Valid => {}
        }
        if credentials.disabled {
            // Said only to whoever knows the password.
            tracing::info!(user_id = %user.id, "login refused: the account is disabled");
            let mut event = self.audit_event(AuditAction::LoginRefused, Some(user.id), client);
            event
                .details
                .insert("reason".to_owned(), "account_disabled".to_owned());
            self.audit.record(&event).await?;
            return Err(LoginError::AccountDisabled);
        }
        let now = self.clock.now();
        let session = Session {
            id: SessionId::from_uuid(self.ids.new_id()),
            user_id: user.id,
            created_at: now,
            revoked_at: None,
        };
        let (refresh_token, first) = self.new_refresh_token(session.id, now, now)?;
        let audit = self.audit_event(AuditAction::LoginSucceeded, Some(user.id), client);
        self.sessions.create(&session, &first, &audit).await?;
        let pair = self.token_pair(user.id, session.id, now, refresh_token, first.expires_at)?;
        tracing::info!(user_id = %user.id, session_id = %session.id, "login succeeded");
        Ok((user, pair))
    }

    /// Upgrades a hash made with outdated parameters. Best effort: a
    /// failure here must not fail a login whose password was right.
    async fn rehash(&self, user: &User, password: &Password) {
        let result = match self.hasher.hash(password).await {
            Ok(hash) => self.accounts.update_password_hash(user.id, &hash).await.map(drop),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => tracing::info!(user_id = %user.id, "password rehashed with current parameters"),
            Err(error) => tracing::warn!(user_id = %user.id, error = %error, "password rehash failed"),
        }
    }

    /// Exchanges a refresh token for a new pair. Each token works once; a
    /// second use means it was copied, and ends its whole session.
    #[instrument(skip_all)]
    pub async fn refresh(&self, presented: &str) -> Result<TokenPair, RefreshError> {
        let hash = self.refresh_tokens.digest(presented);
        let record = self
            .sessions
            .find_refresh_token(&hash)
            .await?
            .ok_or(RefreshError::InvalidRefreshToken)?;
        let session = &record.session;
        if !session.is_active() {
            return Err(RefreshError::InvalidRefreshToken);
        }
        let now = self.clock.now();
        if record.rotated_at.is_some() {
            self.burn_session(session.id, now).await?;
            return Err(RefreshError::InvalidRefreshToken);
        }
        if record.expires_at <= now || session.created_at + self.policy.session_max_lifetime <= now {
            return Err(RefreshError::InvalidRefreshToken);
        }
        if record.account_disabled {
            return Err(RefreshError::AccountDisabled);
        }
        let (refresh_token, next) = self.new_refresh_token(session.id, session.created_at, now)?;
        if !self.sessions.rotate_refresh_token(&hash, &next, now).await? {
            // Lost a race against another use of the same token (or a
            // concurrent logout): treat it as reuse.
            self.burn_session(session.id, now).await?;
            return Err(RefreshError::InvalidRefreshToken);
        }
        Ok(self.token_pair(session.user_id, session.id, now, refresh_token, next.expires_at)?)
    }

    async fn burn_session(&self, id: SessionId, now: DateTime<Utc>) -> Result<(), UnexpectedError> {
        tracing::warn!(session_id = %id, "refresh token reused: revoking the session");
        self.sessions
            .revoke(id, now, RevocationReason::RefreshTokenReuse)
            .await
    }

    /// Verifies an access token and that its session is still live (not
    /// ended, not past its absolute lifetime), so a logout, a password
    /// change or the end of the session takes effect at once.
    #[instrument(skip_all)]
    pub async fn authenticate(&self, access_token: &str) -> Result<AuthenticatedUser, AuthenticateError> {
        let now = self.clock.now();
        let claims = self
            .access_tokens
            .verify(access_token, now)
            .map_err(|InvalidAccessToken| AuthenticateError::InvalidToken)?;
        match self.sessions.find(claims.session_id).await? {
            Some(session)
                if session.is_active()
                    && session.user_id == claims.user_id
                    && now < session.created_at + self.policy.session_max_lifetime =>
            {
                Ok(AuthenticatedUser {
                    user_id: claims.user_id,
                    session_id: claims.session_id,
                })
            }
            _ => Err(AuthenticateError::InvalidToken),
        }
    }

    /// Ends the caller's session: its refresh tokens and access tokens stop
    /// working.
    #[instrument(skip_all, fields(user_id = %who.user_id))]
    pub async fn logout(&self, who: AuthenticatedUser) -> Result<(), UnexpectedError> {
        self.sessions
            .revoke(who.session_id, self.clock.now(), RevocationReason::Logout)
            .await
    }

    #[instrument(skip_all, fields(user_id = %who.user_id))]
    pub async fn current_user(&self, who: AuthenticatedUser) -> Result<User, GetUserError> {
        self.accounts
            .find_by_id(who.user_id)
            .await?
            .ok_or(GetUserError::AccountNotFound)
    }

    /// Sets a new password after checking the current one, and ends every
    /// session of the user (including the caller's).
    #[instrument(skip_all, fields(user_id = %who.user_id))]
    pub async fn change_password(
        &self,
        who: AuthenticatedUser,
        current_password: &str,
        new_password: &str,
        client: &ClientInfo,
    ) -> Result<(), ChangePasswordError> {
        let mut errors = ValidationErrors::new();
        let current = errors.collect(Password::parse_candidate(current_password, "current_password"));
        let new = errors.collect(Password::parse_new(new_password, "new_password", &[]));
        let (Some(current), Some(_)) = (current, new) else {
            return Err(ChangePasswordError::Invalid(errors));
        };
        let credentials = self
            .accounts
            .find_credentials_by_id(who.user_id)
            .await?
            .ok_or(ChangePasswordError::AccountNotFound)?;
        // The account's own names are known now.
        let user = &credentials.user;
        let new = Password::parse_new(
            new_password,
            "new_password",
            &[user.username.as_str(), user.email.as_str()],
        )
        .map_err(|e| ChangePasswordError::Invalid(e.into()))?;
        self.count_password_check(&guess_key(Some(who.user_id), None))
            .await
            .map_err(|b| match b {
                Budget::Exhausted(decision) => ChangePasswordError::TooManyAttempts(decision),
                Budget::Unexpected(e) => ChangePasswordError::Unexpected(e),
            })?;
        if self.hasher.verify(&current, &credentials.password_hash).await? == PasswordVerification::Invalid {
            self.reauthentication_failed(who.user_id, "password.change", client)
                .await?;
            return Err(ChangePasswordError::WrongPassword);
        }
        let hash = self.hasher.hash(&new).await?;
        let audit = self.audit_event(AuditAction::PasswordChanged, Some(who.user_id), client);
        if !self
            .accounts
            .change_password(who.user_id, &hash, self.clock.now(), &audit)
            .await?
        {
            return Err(ChangePasswordError::AccountNotFound);
        }
        tracing::info!("password changed; all sessions revoked");
        Ok(())
    }

    /// Deletes the caller's account and everything it owns, after
    /// confirming the password.
    #[instrument(skip_all, fields(user_id = %who.user_id))]
    pub async fn delete_account(
        &self,
        who: AuthenticatedUser,
        password: &str,
        client: &ClientInfo,
    ) -> Result<(), DeleteAccountError> {
        let password = Password::parse_candidate(password, "password")
            .map_err(|e| DeleteAccountError::Invalid(e.into()))?;
        let credentials = self
            .accounts
            .find_credentials_by_id(who.user_id)
            .await?
            .ok_or(DeleteAccountError::AccountNotFound)?;
        self.count_password_check(&guess_key(Some(who.user_id), None))
            .await
            .map_err(|b| match b {
                Budget::Exhausted(decision) => DeleteAccountError::TooManyAttempts(decision),
                Budget::Unexpected(e) => DeleteAccountError::Unexpected(e),
            })?;
        if self.hasher.verify(&password, &credentials.password_hash).await? == PasswordVerification::Invalid {
            self.reauthentication_failed(who.user_id, "account.delete", client)
                .await?;
            return Err(DeleteAccountError::WrongPassword);
        }
        let audit = self.audit_event(AuditAction::AccountDeleted, Some(who.user_id), client);
        if !self.accounts.delete(who.user_id, &audit).await? {
            return Err(DeleteAccountError::AccountNotFound);
        }
        tracing::info!("account deleted");
        Ok(())
    }

    /// Records a wrong current password given to confirm `what`.
    async fn reauthentication_failed(
        &self,
        user: UserId,
        what: &str,
        client: &ClientInfo,
    ) -> Result<(), UnexpectedError> {
        tracing::info!(user_id = %user, confirming = what, "wrong current password");
        let mut event = self.audit_event(AuditAction::ReauthenticationFailed, Some(user), client);
        event.details.insert("confirming".to_owned(), what.to_owned());
        self.audit.record(&event).await
    }

    /// A refresh token for the session that began at `session_started`:
    /// it lives `refresh_token_ttl`, but not past the session's maximum.
    fn new_refresh_token(
        &self,
        session_id: SessionId,
        session_started: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(RefreshToken, NewRefreshToken), UnexpectedError> {
        let token = self.refresh_tokens.generate()?;
        let record = NewRefreshToken {
            hash: self.refresh_tokens.digest(token.expose()),
            session_id,
            created_at: now,
            expires_at: (now + self.policy.refresh_token_ttl)
                .min(session_started + self.policy.session_max_lifetime),
        };
        Ok((token, record))
    }

    fn token_pair(
        &self,
        user_id: UserId,
        session_id: SessionId,
        now: DateTime<Utc>,
        refresh_token: RefreshToken,
        refresh_expires_at: DateTime<Utc>,
    ) -> Result<TokenPair, UnexpectedError> {
        let claims = AccessClaims {
            user_id,
            session_id,
            issued_at: now,
            expires_at: now + self.policy.access_token_ttl,
        };
        Ok(TokenPair {
            access_token: self.access_tokens.issue(&claims)?,
            access_expires_at: claims.expires_at,
            refresh_token,
            refresh_expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::testing::{FakeAccountWorld, FakeHasher, FixedClock};

    fn registration(n: u32) -> Registration {
        Registration::parse(
            &format!("user{n}@example.com"),
            &format!("user_{n}"),
            "a long enough password",
        )
        .unwrap()
    }

    fn attempt(login: &str, password: &str) -> LoginAttempt {
        LoginAttempt::parse(login, password).unwrap()
    }

    #[tokio::test]
    async fn concurrent_wrong_passwords_get_exactly_the_budget_of_checks() {
        let world = FakeAccountWorld::new();
        world
            .service
            .register(registration(1), &ClientInfo::default())
            .await
            .unwrap();
        let before = world.hasher.verifications();
        let client = ClientInfo::default();
        let attempts = (0..12).map(|_| {
            world
                .service
                .login(attempt("user_1", "not the password at all"), &client)
        });
        let results = futures_join_all(attempts).await;
        let wrong = results
            .iter()
            .filter(|r| matches!(r, Err(LoginError::InvalidCredentials)))
            .count();
        let throttled = results
            .iter()
            .filter(|r| matches!(r, Err(LoginError::TooManyAttempts(d)) if !d.allowed && d.limit == 5))
            .count();
        assert_eq!((wrong, throttled), (5, 7), "{results:?}");
        assert_eq!(
            world.hasher.verifications() - before,
            5,
            "only the budget's worth of passwords is ever checked"
        );
        // The right password is refused too until the window ends.
        assert!(matches!(
            world
                .service
                .login(
                    attempt("user_1", "a long enough password"),
                    &ClientInfo::default()
                )
                .await,
            Err(LoginError::TooManyAttempts(_))
        ));
    }

    #[tokio::test]
    async fn refreshing_never_extends_a_session_past_its_maximum_lifetime() {
        let world = FakeAccountWorld::new();
        let (_, mut pair, _) = logged_in(&world).await;
        // Refresh every 29 days: each refresh token would live 30 days, but
        // the session ends 90 days after the login.
        for _ in 0..3 {
            world.clock.advance(Duration::days(29));
            pair = world
                .service
                .refresh(pair.refresh_token.expose())
                .await
                .expect("within the session's lifetime");
        }
        assert_eq!(
            pair.refresh_expires_at,
            FixedClock::default_start().now() + Duration::days(90),
            "the last refresh token ends with the session"
        );
        // A refresh five minutes before the end gives an access token for
        // fifteen: it dies with the session all the same.
        world.clock.advance(Duration::days(3) - Duration::minutes(5));
        pair = world
            .service
            .refresh(pair.refresh_token.expose())
            .await
            .expect("within the session's lifetime");
        assert!(
            world
                .service
                .authenticate(pair.access_token.expose())
                .await
                .is_ok()
        );
        world.clock.advance(Duration::minutes(6));
        assert!(matches!(
            world.service.authenticate(pair.access_token.expose()).await,
            Err(AuthenticateError::InvalidToken)
        ));
        assert!(matches!(
            world.service.refresh(pair.refresh_token.expose()).await,
            Err(RefreshError::InvalidRefreshToken)
        ));
    }

    #[tokio::test]
    async fn the_budget_belongs_to_the_account_whichever_name_is_typed() {
        let world = FakeAccountWorld::new();
        world
            .service
            .register(registration(1), &ClientInfo::default())
            .await
            .unwrap();
        let mut throttled_at = None;
        for n in 0..10 {
            let login = if n % 2 == 0 { "USER_1" } else { "User1@Example.com" };
            if let Err(LoginError::TooManyAttempts(_)) = world
                .service
                .login(attempt(login, "wrong password here"), &ClientInfo::default())
                .await
            {
                throttled_at = Some(n);
                break;
            }
        }
        assert_eq!(throttled_at, Some(5), "username and email share one budget of 5");
    }

    #[tokio::test]
    async fn an_unknown_login_is_throttled_like_a_known_one() {
        let world = FakeAccountWorld::new();
        let mut outcomes = Vec::new();
        for _ in 0..6 {
            outcomes.push(
                world
                    .service
                    .login(
                        attempt("nobody_here", "wrong password here"),
                        &ClientInfo::default(),
                    )
                    .await,
            );
        }
        assert!(
            outcomes[..5]
                .iter()
                .all(|r| matches!(r, Err(LoginError::InvalidCredentials)))
        );
        assert!(
            matches!(outcomes[5], Err(LoginError::TooManyAttempts(_))),
            "no oracle: an unknown account answers exactly as a known one"
        );
    }

    #[tokio::test]
    async fn wrong_current_passwords_are_audited_and_limited() {
        let world = FakeAccountWorld::new();
        let (user, _, who) = logged_in(&world).await;
        for _ in 0..4 {
            assert!(matches!(
                world
                    .service
                    .change_password(
                        who,
                        "wrong current pw",
                        "a brand new passphrase",
                        &ClientInfo::default()
                    )
                    .await,
                Err(ChangePasswordError::WrongPassword)
            ));
        }
        // The login in `logged_in` used one check; four wrong ones make five.
        assert!(matches!(
            world
                .service
                .delete_account(who, "a long enough password", &ClientInfo::default())
                .await,
            Err(DeleteAccountError::TooManyAttempts(_))
        ));
        let failures = world
            .store
            .audit_events()
            .into_iter()
            .filter(|e| e.action == AuditAction::ReauthenticationFailed && e.user_id == Some(user.id))
            .count();
        assert_eq!(failures, 4, "every wrong current password is recorded");
        assert!(
            world.service.current_user(who).await.is_ok(),
            "the throttled deletion did not happen"
        );
    }

    /// Runs futures concurrently on this task (no runtime features needed).
    async fn futures_join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
        let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
        let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut pending = false;
            for (i, f) in pinned.iter_mut().enumerate() {
                if out[i].is_none() {
                    match f.as_mut().poll(cx) {
                        std::task::Poll::Ready(v) => out[i] = Some(v),
                        std::task::Poll::Pending => pending = true,
                    }
                }
            }
            if pending {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await;
        out.into_iter().flatten().collect()
    }

    async fn logged_in(world: &FakeAccountWorld) -> (User, TokenPair, AuthenticatedUser) {
        let user = world
            .service
            .register(registration(1), &ClientInfo::default())
            .await
            .unwrap();
        let (_, pair) = world
            .service
            .login(
                attempt("user_1", "a long enough password"),
                &ClientInfo::default(),
            )
            .await
            .unwrap();
        let who = world
            .service
            .authenticate(pair.access_token.expose())
            .await
            .unwrap();
        (user, pair, who)
    }

    #[tokio::test]
    async fn register_then_login_by_username_or_email() {
        let world = FakeAccountWorld::new();
        let user = world
            .service
            .register(registration(1), &ClientInfo::default())
            .await
            .unwrap();
        for login in ["user_1", "USER_1", "User1@Example.com"] {
            let (u, pair) = world
                .service
                .login(attempt(login, "a long enough password"), &ClientInfo::default())
                .await
                .unwrap();
            assert_eq!(u.id, user.id);
            assert_eq!(pair.access_expires_at - world.clock.now(), Duration::minutes(15));
            let who = world
                .service
                .authenticate(pair.access_token.expose())
                .await
                .unwrap();
            assert_eq!(who.user_id, user.id);
        }
    }

    #[tokio::test]
    async fn a_disabled_account_gets_no_tokens_and_keeps_its_refresh_token() {
        use crate::access::admin::AdminRepository;
        let world = FakeAccountWorld::new();
        let client = ClientInfo::default();
        let user = world.service.register(registration(1), &client).await.unwrap();
        let (_, pair) = world
            .service
            .login(attempt("user_1", "a long enough password"), &client)
            .await
            .unwrap();
        let event = world
            .service
            .audit_event(AuditAction::LoginSucceeded, Some(user.id), &client);
        let disabled = world
            .store
            .admin()
            .set_disabled(user.id, true, world.clock.now(), &event)
            .await;
        assert!(disabled.unwrap().is_some(), "the fake disables a known account");

        let right = world
            .service
            .login(attempt("user_1", "a long enough password"), &client)
            .await;
        assert!(
            matches!(right, Err(LoginError::AccountDisabled)),
            "the right password of a disabled account is refused as disabled: {right:?}"
        );
        let wrong = world
            .service
            .login(attempt("user_1", "not the password"), &client)
            .await;
        assert!(
            matches!(wrong, Err(LoginError::InvalidCredentials)),
            "a wrong password learns nothing about the account: {wrong:?}"
        );
        let refused = world.service.refresh(pair.refresh_token.expose()).await;
        assert!(
            matches!(refused, Err(RefreshError::AccountDisabled)),
            "a disabled account's refresh token is refused as disabled: {refused:?}"
        );

        world
            .store
            .admin()
            .set_disabled(user.id, false, world.clock.now(), &event)
            .await
            .unwrap();
        let again = world.service.refresh(pair.refresh_token.expose()).await;
        assert!(
            again.is_ok(),
            "the refused refresh token was not spent: it works once the account is enabled: {again:?}"
        );
    }

    #[tokio::test]
    async fn duplicates_are_reported_by_kind() {
        let world = FakeAccountWorld::new();
        world
            .service
            .register(registration(1), &ClientInfo::default())
            .await
            .unwrap();
        let same_email = Registration::parse("USER1@example.com", "other", "a long enough password").unwrap();
        assert!(matches!(
            world.service.register(same_email, &ClientInfo::default()).await,
            Err(RegisterError::EmailTaken)
        ));
        let same_name = Registration::parse("x@example.com", "User_1", "a long enough password").unwrap();
        assert!(matches!(
            world.service.register(same_name, &ClientInfo::default()).await,
            Err(RegisterError::UsernameTaken)
        ));
    }

    #[tokio::test]
    async fn unknown_login_and_wrong_password_are_indistinguishable() {
        let world = FakeAccountWorld::new();
        world
            .service
            .register(registration(1), &ClientInfo::default())
            .await
            .unwrap();
        let wrong = world
            .service
            .login(attempt("user_1", "not the password"), &ClientInfo::default())
            .await
            .unwrap_err();
        let unknown = world
            .service
            .login(attempt("ghost", "not the password"), &ClientInfo::default())
            .await
            .unwrap_err();
        let unparseable = world
            .service
            .login(attempt("no such!", "not the password"), &ClientInfo::default())
            .await
            .unwrap_err();
        for e in [&wrong, &unknown, &unparseable] {
            assert!(matches!(e, LoginError::InvalidCredentials));
        }
        assert_eq!(wrong.to_string(), unknown.to_string());
        // The unknown logins still paid for a hash verification.
        assert_eq!(world.hasher.dummy_verifications(), 2);
    }

    #[tokio::test]
    async fn outdated_hash_is_upgraded_on_login() {
        let old = FakeAccountWorld::with_hasher(FakeHasher::with_cost(1));
        old.service
            .register(registration(1), &ClientInfo::default())
            .await
            .unwrap();
        // Same store, a hasher whose parameters moved on.
        let upgraded = AccountService::new(
            old.store.accounts(),
            old.store.sessions(),
            FakeHasher::with_cost(2),
            crate::testing::FakeAccessTokens,
            crate::testing::FakeRefreshTokens::default(),
            old.store.audit(),
            old.guesses.clone(),
            old.clock.clone(),
            crate::testing::SequentialIds::default(),
            AccountPolicy::default(),
        );
        upgraded
            .login(
                attempt("user_1", "a long enough password"),
                &ClientInfo::default(),
            )
            .await
            .unwrap();
        let creds = old
            .store
            .accounts()
            .find_credentials_by_login(&LoginId::parse("user_1").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(creds.password_hash.as_str().starts_with("fake$2$"));
    }

    #[tokio::test]
    async fn refresh_rotates_and_reuse_burns_the_family() {
        let world = FakeAccountWorld::new();
        let (_, first, _) = logged_in(&world).await;
        let second = world.service.refresh(first.refresh_token.expose()).await.unwrap();
        assert_ne!(second.refresh_token, first.refresh_token);
        let third = world
            .service
            .refresh(second.refresh_token.expose())
            .await
            .unwrap();

        // An attacker replays the first token: rejected, and the live
        // descendant dies with the family.
        assert!(matches!(
            world.service.refresh(first.refresh_token.expose()).await,
            Err(RefreshError::InvalidRefreshToken)
        ));
        assert!(matches!(
            world.service.refresh(third.refresh_token.expose()).await,
            Err(RefreshError::InvalidRefreshToken)
        ));
        assert!(matches!(
            world.service.authenticate(third.access_token.expose()).await,
            Err(AuthenticateError::InvalidToken)
        ));
    }

    #[tokio::test]
    async fn refresh_token_expires() {
        let world = FakeAccountWorld::new();
        let (_, pair, _) = logged_in(&world).await;
        world.clock.advance(Duration::days(30));
        assert!(matches!(
            world.service.refresh(pair.refresh_token.expose()).await,
            Err(RefreshError::InvalidRefreshToken)
        ));
        assert!(matches!(
            world.service.refresh("garbage").await,
            Err(RefreshError::InvalidRefreshToken)
        ));
    }

    #[tokio::test]
    async fn access_token_expires_after_its_ttl() {
        let world = FakeAccountWorld::new();
        let (_, pair, _) = logged_in(&world).await;
        world.clock.advance(Duration::minutes(15));
        assert!(matches!(
            world.service.authenticate(pair.access_token.expose()).await,
            Err(AuthenticateError::InvalidToken)
        ));
    }

    #[tokio::test]
    async fn logout_kills_refresh_and_access_tokens_of_that_session_only() {
        let world = FakeAccountWorld::new();
        let (_, pair, who) = logged_in(&world).await;
        let (_, other) = world
            .service
            .login(
                attempt("user_1", "a long enough password"),
                &ClientInfo::default(),
            )
            .await
            .unwrap();
        world.service.logout(who).await.unwrap();
        assert!(
            world
                .service
                .authenticate(pair.access_token.expose())
                .await
                .is_err()
        );
        assert!(world.service.refresh(pair.refresh_token.expose()).await.is_err());
        assert!(
            world
                .service
                .authenticate(other.access_token.expose())
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn password_change_requires_current_and_ends_every_session() {
        let world = FakeAccountWorld::new();
        let (_, pair, who) = logged_in(&world).await;
        assert!(matches!(
            world
                .service
                .change_password(
                    who,
                    "wrong password!",
                    "a brand new password",
                    &ClientInfo::default()
                )
                .await,
            Err(ChangePasswordError::WrongPassword)
        ));
        match world
            .service
            .change_password(who, "", "short", &ClientInfo::default())
            .await
        {
            Err(ChangePasswordError::Invalid(errors)) => {
                let fields: Vec<_> = errors.errors().iter().map(|e| e.field).collect();
                assert_eq!(fields, ["current_password", "new_password"]);
            }
            other => panic!("expected validation errors, got {other:?}"),
        }
        world
            .service
            .change_password(
                who,
                "a long enough password",
                "a brand new password",
                &ClientInfo::default(),
            )
            .await
            .unwrap();
        assert!(
            world
                .service
                .authenticate(pair.access_token.expose())
                .await
                .is_err()
        );
        assert!(world.service.refresh(pair.refresh_token.expose()).await.is_err());
        assert!(
            world
                .service
                .login(
                    attempt("user_1", "a long enough password"),
                    &ClientInfo::default()
                )
                .await
                .is_err()
        );
        assert!(
            world
                .service
                .login(attempt("user_1", "a brand new password"), &ClientInfo::default())
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn delete_account_requires_password_and_removes_everything() {
        let world = FakeAccountWorld::new();
        let (_, pair, who) = logged_in(&world).await;
        assert!(matches!(
            world
                .service
                .delete_account(who, "wrong password!", &ClientInfo::default())
                .await,
            Err(DeleteAccountError::WrongPassword)
        ));
        world
            .service
            .delete_account(who, "a long enough password", &ClientInfo::default())
            .await
            .unwrap();
        assert!(
            world
                .service
                .authenticate(pair.access_token.expose())
                .await
                .is_err()
        );
        assert!(matches!(
            world.service.current_user(who).await,
            Err(GetUserError::AccountNotFound)
        ));
        assert!(
            world
                .service
                .login(
                    attempt("user_1", "a long enough password"),
                    &ClientInfo::default()
                )
                .await
                .is_err()
        );
    }
}
