//! Authenticating signed device requests (protocol v1): clock skew, the
//! signature against the current or still-graced previous secret, revocation,
//! replay and the device's rate — in that order — and what an authenticated
//! device reports (heartbeats).

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use eagate_protocol::SignedHeaders;
use tracing::instrument;

use super::error::HeartbeatError;
use super::model::{DeviceId, DeviceName, Heartbeat, HeartbeatInput};
use super::ports::{Admission, AdmissionPolicy, DeviceRepository, ReplayGuard, SignatureVerifier};
use crate::account::UserId;
use crate::activity::ActivityBuffer;
use crate::clock::Clock;
use crate::error::UnexpectedError;
use crate::ratelimit::{AddressKey, RateDecision, RateLimit, RateLimiter};

/// The failed-authentication budget's key: this prefix and the client's
/// [`limited_address`](crate::ratelimit::limited_address).
pub const FAILURES_KEY_PREFIX: &str = "device-auth-failures:";

/// A request as the device signed it.
#[derive(Debug, Clone)]
pub struct DeviceRequest<'a> {
    pub method: &'a str,
    /// The path exactly as on the request line, before any `?`.
    pub path: &'a str,
    /// The query exactly as on the request line, after the `?`.
    pub query: &'a str,
    pub headers: &'a SignedHeaders,
    /// Lowercase hex SHA-256 of the exact body bytes.
    pub body_sha256_hex: &'a str,
}

/// A request let through by [`DeviceAuthService::precheck`]: its timestamp
/// is in the window and it holds one unit of its address's failure budget,
/// counted before anything costly (reading the body, the lookup), so
/// concurrent guesses from one address get exactly the budget.
/// [`DeviceAuthService::authenticate`] gives it back unless the signature
/// turns out wrong; an attempt dropped before that (the body could not be
/// read, the client went away) stays counted as a failure.
#[derive(Debug)]
#[must_use = "an attempt is spent by `authenticate`"]
pub struct Attempt {
    failure_key: AddressKey,
}

/// A device whose request passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedDevice {
    pub id: DeviceId,
    pub owner: UserId,
    pub name: DeviceName,
    /// The device's configuration revision, as cached with its credentials
    /// (see [`DeviceCredentials::config_revision`]).
    pub config_revision: i64,
    /// Its deployment revision, as cached with its credentials (see
    /// [`DeviceCredentials::deployment_revision`]).
    pub deployment_revision: i64,
}

/// Why a device request was refused. Nothing here helps guess a secret:
/// an unknown device and a wrong signature are the same outcome.
#[derive(Debug, thiserror::Error)]
pub enum DeviceAuthError {
    #[error("the request timestamp is {skew_seconds} s away from the server's clock")]
    ClockSkew {
        server_time: DateTime<Utc>,
        skew_seconds: i64,
    },
    /// Signed before the replay memory begins (the server restarted and
    /// forgot the nonces of earlier requests): re-sign with the current time.
    #[error("the request was signed before the server's replay memory begins")]
    PredatesReplayMemory {
        server_time: DateTime<Utc>,
        since: DateTime<Utc>,
    },
    #[error("the signature does not match")]
    InvalidSignature,
    #[error("the device is revoked")]
    Revoked,
    #[error("the nonce was already used")]
    Replayed,
    /// The device is over its request rate (its nonce is spent).
    #[error("the device is over its request rate")]
    Throttled(RateDecision),
    /// Too many failed authentications from the caller's address: refused
    /// before any lookup.
    #[error("too many failed authentications from this address")]
    TooManyFailures(RateDecision),
    /// The replay store cannot be reached: refuse rather than risk a replay.
    #[error("replay protection is unavailable")]
    ReplayStoreUnavailable(#[source] UnexpectedError),
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

/// Limits of the protocol and of each device.
#[derive(Debug, Clone, Copy)]
pub struct DeviceAuthPolicy {
    /// The largest accepted |server time − X-Timestamp|.
    pub max_clock_skew: Duration,
    /// Requests per device (after authentication).
    pub device_rate: RateLimit,
    /// Failed authentications per client address, after which requests from
    /// it are refused before any work.
    pub failures_per_ip: RateLimit,
}

impl DeviceAuthPolicy {
    pub fn admission(&self) -> AdmissionPolicy {
        AdmissionPolicy {
            window: self.max_clock_skew,
            rate: self.device_rate,
        }
    }
}

impl Default for DeviceAuthPolicy {
    fn default() -> Self {
        Self {
            max_clock_skew: Duration::seconds(300),
            device_rate: RateLimit::per_second(10),
            failures_per_ip: RateLimit::per_minute(60),
        }
    }
}

/// Authenticates device requests and records what devices report.
#[derive(Debug, Clone)]
pub struct DeviceAuthService<D, V, G, L, C> {
    devices: D,
    verifier: V,
    guard: G,
    failures: L,
    clock: C,
    activity: Arc<ActivityBuffer>,
    policy: DeviceAuthPolicy,
}

impl<D, V, G, L, C> DeviceAuthService<D, V, G, L, C>
where
    D: DeviceRepository,
    V: SignatureVerifier,
    G: ReplayGuard,
    L: RateLimiter,
    C: Clock,
{
    /// `failures` counts failed authentications per client address; it
    /// should be local to the instance (it is consulted before any other
    /// work, so it must be cheap).
    pub fn new(
        devices: D,
        verifier: V,
        guard: G,
        failures: L,
        clock: C,
        activity: Arc<ActivityBuffer>,
        policy: DeviceAuthPolicy,
    ) -> Self {
        Self {
            devices,
            verifier,
            guard,
            failures,
            clock,
            activity,
            policy,
        }
    }

    pub fn policy(&self) -> &DeviceAuthPolicy {
        &self.policy
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The checks that cost nothing and come before the body is read: the
    /// clock skew (protocol check 2), then one unit of the failure budget of
    /// the client's address (`None`: unknown; such clients share one
    /// budget), counted now — an address whose budget is spent is refused
    /// here, before its body is read or any lookup.
    pub async fn precheck(
        &self,
        headers: &SignedHeaders,
        client_ip: Option<IpAddr>,
    ) -> Result<Attempt, DeviceAuthError> {
        let now = self.clock.now();
        let skew = now.timestamp().saturating_sub(headers.unix_seconds());
        if skew.unsigned_abs() > self.policy.max_clock_skew.num_seconds().unsigned_abs() {
            return Err(DeviceAuthError::ClockSkew {
                server_time: now,
                skew_seconds: skew,
            });
        }
        let failure_key = AddressKey::new(FAILURES_KEY_PREFIX, client_ip);
        let budget = self
            .failures
            .hit(failure_key.as_str(), self.policy.failures_per_ip)
            .await?;
        if !budget.allowed {
            return Err(DeviceAuthError::TooManyFailures(budget));
        }
        Ok(Attempt { failure_key })
    }

    /// Runs the protocol's checks 3–5 on a request that passed
    /// [`precheck`](Self::precheck), and settles its attempt: a wrong
    /// signature (or unknown device) keeps it counted as a failure, any
    /// other outcome gives it back.
    #[instrument(level = "debug", skip_all, fields(device_id = %request.headers.device_id()))]
    pub async fn authenticate(
        &self,
        request: &DeviceRequest<'_>,
        attempt: Attempt,
    ) -> Result<AuthenticatedDevice, DeviceAuthError> {
        let outcome = self.verify(request).await;
        if !matches!(outcome, Err(DeviceAuthError::InvalidSignature))
            && let Err(e) = self
                .failures
                .refund(attempt.failure_key.as_str(), self.policy.failures_per_ip)
                .await
        {
            // The request's own outcome stands; the address merely keeps
            // one more failure on its count until the window ends.
            tracing::warn!(error = %e, "could not give back a failed-authentication attempt");
        }
        outcome
    }

    /// Protocol checks 3–5: signature, revocation, replay and rate.
    async fn verify(&self, request: &DeviceRequest<'_>) -> Result<AuthenticatedDevice, DeviceAuthError> {
        let headers = request.headers;
        let now = self.clock.now();
        let id = DeviceId::from_uuid(uuid::Uuid::from_bytes(headers.device_uuid_bytes()));
        let device = match self.devices.find_credentials(id).await? {
            Some(device) if self.signature_matches(&device, request, now)? => device,
            _ => return Err(DeviceAuthError::InvalidSignature),
        };
        if device.revoked {
            return Err(DeviceAuthError::Revoked);
        }
        let signed_at = DateTime::from_timestamp(headers.unix_seconds(), 0).unwrap_or(now);
        let admission = self
            .guard
            .admit(
                id,
                device.owner,
                headers.nonce(),
                signed_at,
                &self.policy.admission(),
            )
            .await
            .map_err(DeviceAuthError::ReplayStoreUnavailable)?;
        match admission {
            Admission::Admitted => {}
            Admission::Replayed => return Err(DeviceAuthError::Replayed),
            Admission::PredatesMemory { since } => {
                return Err(DeviceAuthError::PredatesReplayMemory {
                    server_time: now,
                    since,
                });
            }
            Admission::Throttled(decision) => return Err(DeviceAuthError::Throttled(decision)),
        }
        self.activity.seen(id, now);
        Ok(AuthenticatedDevice {
            id,
            owner: device.owner,
            name: device.name,
            config_revision: device.config_revision,
            deployment_revision: device.deployment_revision,
        })
    }

    /// The signature checked against the current secret, then against the
    /// previous one while its grace lasts.
    fn signature_matches(
        &self,
        device: &super::model::DeviceCredentials,
        request: &DeviceRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<bool, UnexpectedError> {
        let headers = request.headers;
        let message = eagate_protocol::string_to_sign(
            request.method,
            request.path,
            request.query,
            headers.device_id(),
            headers.timestamp(),
            headers.nonce(),
            request.body_sha256_hex,
        );
        let signature = headers.signature();
        if self
            .verifier
            .verify(device.id, &device.current, &message, signature)?
        {
            return Ok(true);
        }
        match &device.previous {
            Some((previous, until)) if *until > now => {
                self.verifier.verify(device.id, previous, &message, signature)
            }
            _ => Ok(false),
        }
    }

    /// Accepts the device's heartbeat: validated now, written with the next
    /// activity flush (the owner sees it within one flush interval).
    #[instrument(level = "debug", skip_all, fields(device_id = %device))]
    pub fn heartbeat(&self, device: DeviceId, input: HeartbeatInput) -> Result<Heartbeat, HeartbeatError> {
        let heartbeat = Heartbeat::parse(input, self.clock.now()).map_err(HeartbeatError::Invalid)?;
        self.activity.heartbeat(device, heartbeat.clone());
        Ok(heartbeat)
    }
}

#[cfg(test)]
mod tests {
    use eagate_protocol::{HeaderSlot, SignedHeaders};

    use super::*;
    use crate::account::Registration;
    use crate::audit::ClientInfo;
    use crate::device::{DevicePolicy, DeviceWithSecret};
    use crate::testing::{
        FakeAccountWorld, FakeRateLimiter, FakeReplayGuard, FakeSealer, FakeVerifier, fake_mac,
    };

    struct Rig {
        world: FakeAccountWorld,
        nonces: FakeReplayGuard,
        failures: FakeRateLimiter,
        activity: Arc<ActivityBuffer>,
        auth: DeviceAuthService<
            crate::testing::InMemoryDeviceRepository,
            FakeVerifier,
            FakeReplayGuard,
            FakeRateLimiter,
            crate::testing::FixedClock,
        >,
        devices: crate::testing::FakeDeviceService,
        owner: UserId,
    }

    async fn rig() -> Rig {
        let world = FakeAccountWorld::new();
        let reg = Registration::parse("o@example.com", "owner", "a long enough password").unwrap();
        let owner = world
            .service
            .register(reg, &ClientInfo::default())
            .await
            .unwrap()
            .id;
        let sealer = FakeSealer::new("k1");
        let nonces = FakeReplayGuard::default();
        let failures = FakeRateLimiter::default();
        let activity = Arc::new(ActivityBuffer::default());
        let auth = DeviceAuthService::new(
            world.store.devices(),
            FakeVerifier(sealer.clone()),
            nonces.clone(),
            failures.clone(),
            world.clock.clone(),
            Arc::clone(&activity),
            DeviceAuthPolicy {
                device_rate: RateLimit::per_second(5),
                failures_per_ip: RateLimit::per_minute(3),
                ..DeviceAuthPolicy::default()
            },
        );
        let devices = world.devices(sealer, DevicePolicy::default());
        Rig {
            world,
            nonces,
            failures,
            activity,
            auth,
            devices,
            owner,
        }
    }

    /// Signs a request for `device` at `timestamp` with `secret`.
    fn signed(device: &str, secret: &str, timestamp: i64, nonce: &str, body_hash: &str) -> SignedHeaders {
        let message = eagate_protocol::string_to_sign(
            "POST",
            "/api/v1/device/heartbeat",
            "",
            device,
            &timestamp.to_string(),
            nonce,
            body_hash,
        );
        let mac = fake_mac(secret, &message);
        let signature = eagate_protocol::hex(&mac);
        SignedHeaders::parse(
            HeaderSlot::Present(device),
            HeaderSlot::Present(&timestamp.to_string()),
            HeaderSlot::Present(nonce),
            HeaderSlot::Present(&format!("v1={signature}")),
        )
        .unwrap()
    }

    async fn call(rig: &Rig, headers: &SignedHeaders) -> Result<AuthenticatedDevice, DeviceAuthError> {
        call_from(rig, headers, None).await
    }

    async fn call_from(
        rig: &Rig,
        headers: &SignedHeaders,
        client_ip: Option<IpAddr>,
    ) -> Result<AuthenticatedDevice, DeviceAuthError> {
        let request = DeviceRequest {
            method: "POST",
            path: "/api/v1/device/heartbeat",
            query: "",
            headers,
            body_sha256_hex: "bodyhash",
        };
        let attempt = rig.auth.precheck(headers, client_ip).await?;
        rig.auth.authenticate(&request, attempt).await
    }

    impl Rig {
        async fn device(&self, name: &str) -> DeviceWithSecret {
            self.devices
                .register(self.owner, name, &ClientInfo::default())
                .await
                .unwrap()
        }

        fn now(&self) -> i64 {
            self.world.clock.now().timestamp()
        }
    }

    #[tokio::test]
    async fn a_correctly_signed_request_passes_and_marks_the_device_seen() {
        let rig = rig().await;
        let d = rig.device("EA").await;
        let id = d.device.id.to_string();
        let ok = call(
            &rig,
            &signed(
                &id,
                d.secret.expose(),
                rig.now(),
                "nonce-000000000001",
                "bodyhash",
            ),
        )
        .await
        .unwrap();
        assert_eq!(ok.id, d.device.id);
        assert_eq!(ok.owner, rig.owner);
        // Seen is buffered for the next activity flush, not written now.
        let batch = rig.activity.drain();
        assert_eq!(batch.len(), 1, "{batch:?}");
        assert_eq!(
            (batch[0].0, batch[0].1.seen_at),
            (d.device.id, Some(rig.world.clock.now()))
        );
        assert!(
            rig.devices
                .get(rig.owner, d.device.id)
                .await
                .unwrap()
                .last_seen_at
                .is_none(),
            "no write on the request path"
        );
    }

    #[tokio::test]
    async fn a_device_over_its_rate_is_throttled_and_others_are_not() {
        let rig = rig().await;
        let d = rig.device("EA").await;
        let other = rig.device("Other").await;
        let id = d.device.id.to_string();
        for n in 0..5 {
            let nonce = format!("rate-nonce-{n:08}");
            call(
                &rig,
                &signed(&id, d.secret.expose(), rig.now(), &nonce, "bodyhash"),
            )
            .await
            .unwrap();
        }
        let over = call(
            &rig,
            &signed(&id, d.secret.expose(), rig.now(), "rate-nonce-99999", "bodyhash"),
        )
        .await;
        assert!(
            matches!(&over, Err(DeviceAuthError::Throttled(decision)) if decision.limit == 5),
            "{over:?}"
        );
        call(
            &rig,
            &signed(
                &other.device.id.to_string(),
                other.secret.expose(),
                rig.now(),
                "rate-nonce-99999",
                "bodyhash",
            ),
        )
        .await
        .expect("another device is not limited");
    }

    #[tokio::test]
    async fn failed_authentications_exhaust_the_callers_budget_before_any_lookup() {
        let rig = rig().await;
        let d = rig.device("EA").await;
        let id = d.device.id.to_string();
        let attacker: IpAddr = "203.0.113.9".parse().unwrap();
        let honest: IpAddr = "198.51.100.7".parse().unwrap();
        for n in 0..3 {
            let nonce = format!("bogus-nonce-{n:08}");
            let unknown = uuid::Uuid::now_v7().to_string();
            let r = call_from(
                &rig,
                &signed(&unknown, "eags_guess", rig.now(), &nonce, "bodyhash"),
                Some(attacker),
            )
            .await;
            assert!(matches!(r, Err(DeviceAuthError::InvalidSignature)), "{r:?}");
        }
        assert_eq!(rig.failures.count("device-auth-failures:203.0.113.9"), 3);
        // Even the right secret is refused from that address now, before any
        // lookup; another address is not affected.
        let refused = call_from(
            &rig,
            &signed(&id, d.secret.expose(), rig.now(), "good-nonce-00001", "bodyhash"),
            Some(attacker),
        )
        .await;
        assert!(
            matches!(refused, Err(DeviceAuthError::TooManyFailures(_))),
            "{refused:?}"
        );
        call_from(
            &rig,
            &signed(&id, d.secret.expose(), rig.now(), "good-nonce-00001", "bodyhash"),
            Some(honest),
        )
        .await
        .expect("the refused request did not burn its nonce, and the honest address is fine");
        // Successes are never counted.
        assert_eq!(rig.failures.count("device-auth-failures:198.51.100.7"), 0);
    }

    #[tokio::test]
    async fn only_a_wrong_signature_keeps_its_attempt_counted() {
        let rig = rig().await;
        let d = rig.device("EA").await;
        let id = d.device.id.to_string();
        let ip: IpAddr = "198.51.100.8".parse().unwrap();
        let key = "device-auth-failures:198.51.100.8";
        let good = signed(&id, d.secret.expose(), rig.now(), "kept-nonce-000001", "bodyhash");
        call_from(&rig, &good, Some(ip)).await.unwrap();
        let replay = call_from(&rig, &good, Some(ip)).await;
        assert!(matches!(replay, Err(DeviceAuthError::Replayed)), "{replay:?}");
        assert_eq!(
            rig.failures.count(key),
            0,
            "a success and a replay give their attempt back"
        );
        // An attempt that never reaches `authenticate` (its body could not
        // be read) stays counted.
        let _dropped = rig.auth.precheck(&good, Some(ip)).await.unwrap();
        assert_eq!(rig.failures.count(key), 1);
        let wrong = signed(&id, "eags_wrong", rig.now(), "kept-nonce-000002", "bodyhash");
        let r = call_from(&rig, &wrong, Some(ip)).await;
        assert!(matches!(r, Err(DeviceAuthError::InvalidSignature)), "{r:?}");
        assert_eq!(rig.failures.count(key), 2, "a wrong signature stays counted");
    }

    #[tokio::test]
    async fn clients_without_a_known_address_share_one_failure_budget() {
        let rig = rig().await;
        let guess = |n: u32| {
            let unknown = uuid::Uuid::now_v7().to_string();
            signed(
                &unknown,
                "eags_guess",
                rig.now(),
                &format!("bogus-nonce-{n:08}"),
                "bodyhash",
            )
        };
        for n in 0..3 {
            let r = call(&rig, &guess(n)).await;
            assert!(matches!(r, Err(DeviceAuthError::InvalidSignature)), "{r:?}");
        }
        assert_eq!(rig.failures.count("device-auth-failures:unknown"), 3);
        let refused = call(&rig, &guess(3)).await;
        assert!(
            matches!(refused, Err(DeviceAuthError::TooManyFailures(_))),
            "an unknown address is no way around the budget: {refused:?}"
        );
    }

    #[tokio::test]
    async fn a_request_signed_before_the_replay_memory_begins_is_refused() {
        let rig = rig().await;
        let d = rig.device("EA").await;
        let id = d.device.id.to_string();
        // The guard lost its memory (a restart) a minute ago.
        let since = rig.world.clock.now() - Duration::seconds(60);
        rig.nonces.remember_since(since);
        let old = call(
            &rig,
            &signed(
                &id,
                d.secret.expose(),
                rig.now() - 120,
                "captured-nonce-1",
                "bodyhash",
            ),
        )
        .await;
        assert!(
            matches!(old, Err(DeviceAuthError::PredatesReplayMemory { since: s, .. }) if s == since),
            "{old:?}"
        );
        call(
            &rig,
            &signed(&id, d.secret.expose(), rig.now(), "fresh-nonce-0001", "bodyhash"),
        )
        .await
        .expect("a request signed now passes");
    }

    #[tokio::test]
    async fn clock_skew_is_bounded_both_ways() {
        let rig = rig().await;
        let d = rig.device("EA").await;
        let id = d.device.id.to_string();
        for (offset, ok) in [(-300, true), (300, true), (-301, false), (301, false)] {
            let nonce = format!("skew-nonce-{:06}", offset + 1000);
            let result = call(
                &rig,
                &signed(&id, d.secret.expose(), rig.now() + offset, &nonce, "bodyhash"),
            )
            .await;
            match (ok, result) {
                (true, Ok(_)) => {}
                (
                    false,
                    Err(DeviceAuthError::ClockSkew {
                        server_time,
                        skew_seconds,
                    }),
                ) => {
                    assert_eq!(server_time, rig.world.clock.now());
                    assert_eq!(skew_seconds, -offset);
                }
                (_, other) => panic!("offset {offset}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn unknown_devices_and_wrong_signatures_look_the_same() {
        let rig = rig().await;
        let d = rig.device("EA").await;
        let id = d.device.id.to_string();
        let unknown = uuid::Uuid::now_v7().to_string();
        let a = call(
            &rig,
            &signed(
                &unknown,
                d.secret.expose(),
                rig.now(),
                "nonce-000000000001",
                "bodyhash",
            ),
        )
        .await;
        let b = call(
            &rig,
            &signed(&id, "eags_wrong", rig.now(), "nonce-000000000002", "bodyhash"),
        )
        .await;
        let c = call(
            &rig,
            &signed(
                &id,
                d.secret.expose(),
                rig.now(),
                "nonce-000000000003",
                "otherbody",
            ),
        )
        .await;
        for r in [a, b, c] {
            assert!(matches!(r, Err(DeviceAuthError::InvalidSignature)), "{r:?}");
        }
    }

    #[tokio::test]
    async fn a_failed_signature_does_not_burn_the_nonce() {
        let rig = rig().await;
        let d = rig.device("EA").await;
        let id = d.device.id.to_string();
        let forged = call(
            &rig,
            &signed(&id, "eags_attacker", rig.now(), "nonce-000000000009", "bodyhash"),
        )
        .await;
        assert!(matches!(forged, Err(DeviceAuthError::InvalidSignature)));
        call(
            &rig,
            &signed(
                &id,
                d.secret.expose(),
                rig.now(),
                "nonce-000000000009",
                "bodyhash",
            ),
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn replays_are_refused_and_an_unreachable_store_fails_closed() {
        let rig = rig().await;
        let d = rig.device("EA").await;
        let headers = signed(
            &d.device.id.to_string(),
            d.secret.expose(),
            rig.now(),
            "nonce-000000000001",
            "bodyhash",
        );
        call(&rig, &headers).await.unwrap();
        assert!(matches!(
            call(&rig, &headers).await,
            Err(DeviceAuthError::Replayed)
        ));
        rig.nonces.set_down(true);
        let fresh = signed(
            &d.device.id.to_string(),
            d.secret.expose(),
            rig.now(),
            "nonce-000000000002",
            "bodyhash",
        );
        assert!(matches!(
            call(&rig, &fresh).await,
            Err(DeviceAuthError::ReplayStoreUnavailable(_))
        ));
    }

    #[tokio::test]
    async fn revocation_is_only_revealed_to_a_caller_holding_the_secret() {
        let rig = rig().await;
        let d = rig.device("EA").await;
        let id = d.device.id.to_string();
        rig.devices
            .revoke(rig.owner, d.device.id, &ClientInfo::default())
            .await
            .unwrap();
        let with_secret = call(
            &rig,
            &signed(
                &id,
                d.secret.expose(),
                rig.now(),
                "nonce-000000000001",
                "bodyhash",
            ),
        )
        .await;
        assert!(matches!(with_secret, Err(DeviceAuthError::Revoked)));
        let without = call(
            &rig,
            &signed(&id, "eags_guess", rig.now(), "nonce-000000000002", "bodyhash"),
        )
        .await;
        assert!(matches!(without, Err(DeviceAuthError::InvalidSignature)));
    }

    #[tokio::test]
    async fn the_previous_secret_works_only_during_its_grace() {
        let rig = rig().await;
        let d = rig.device("EA").await;
        let id = d.device.id.to_string();
        let new = rig
            .devices
            .rotate_secret(rig.owner, d.device.id, Some(60), &ClientInfo::default())
            .await
            .unwrap();
        call(
            &rig,
            &signed(
                &id,
                d.secret.expose(),
                rig.now(),
                "nonce-000000000001",
                "bodyhash",
            ),
        )
        .await
        .unwrap();
        call(
            &rig,
            &signed(
                &id,
                new.secret.expose(),
                rig.now(),
                "nonce-000000000002",
                "bodyhash",
            ),
        )
        .await
        .unwrap();
        rig.world.clock.advance(Duration::seconds(60));
        let old = call(
            &rig,
            &signed(
                &id,
                d.secret.expose(),
                rig.now(),
                "nonce-000000000003",
                "bodyhash",
            ),
        )
        .await;
        assert!(matches!(old, Err(DeviceAuthError::InvalidSignature)));
        call(
            &rig,
            &signed(
                &id,
                new.secret.expose(),
                rig.now(),
                "nonce-000000000004",
                "bodyhash",
            ),
        )
        .await
        .unwrap();
        // Without grace, the old secret dies at once.
        let newer = rig
            .devices
            .rotate_secret(rig.owner, d.device.id, None, &ClientInfo::default())
            .await
            .unwrap();
        let stale = call(
            &rig,
            &signed(
                &id,
                new.secret.expose(),
                rig.now(),
                "nonce-000000000005",
                "bodyhash",
            ),
        )
        .await;
        assert!(matches!(stale, Err(DeviceAuthError::InvalidSignature)));
        call(
            &rig,
            &signed(
                &id,
                newer.secret.expose(),
                rig.now(),
                "nonce-000000000006",
                "bodyhash",
            ),
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn heartbeats_are_validated_now_and_written_with_the_next_flush() {
        let rig = rig().await;
        let d = rig.device("EA").await;
        let input = crate::device::HeartbeatInput {
            ea_version: Some("1.2.3".into()),
            balance: Some(1000.0),
            ..Default::default()
        };
        rig.auth.heartbeat(d.device.id, input).unwrap();
        let writer = crate::activity::ActivityWriter::new(
            Arc::clone(&rig.activity),
            rig.world.store.devices(),
            rig.world.store.signals(),
        );
        assert_eq!(writer.flush().await.unwrap(), 1);
        let seen = rig.devices.get(rig.owner, d.device.id).await.unwrap();
        let hb = seen.last_heartbeat.unwrap();
        assert_eq!(hb.ea_version.as_deref(), Some("1.2.3"));
        assert_eq!(hb.balance, Some(1000.0));
        assert_eq!(hb.received_at, rig.world.clock.now());
        let bad = crate::device::HeartbeatInput {
            terminal_build: Some(-1),
            ..Default::default()
        };
        assert!(matches!(
            rig.auth.heartbeat(d.device.id, bad),
            Err(crate::device::HeartbeatError::Invalid(_))
        ));
        assert!(rig.activity.is_empty(), "an invalid heartbeat is not buffered");
    }
}
