//! Authenticating signed device requests (protocol v1): clock skew, the
//! signature against the current or still-graced previous secret, revocation,
//! and replay — in that order.

use chrono::{DateTime, Duration, Utc};
use eagate_protocol::SignedHeaders;
use tracing::instrument;

use super::model::{DeviceId, DeviceName};
use super::ports::{DeviceRepository, NonceStore, SignatureVerifier};
use crate::account::UserId;
use crate::clock::Clock;
use crate::error::UnexpectedError;

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

/// A device whose request passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedDevice {
    pub id: DeviceId,
    pub owner: UserId,
    pub name: DeviceName,
    /// As read while authenticating: lets a poll skip a `last_poll_at`
    /// write that is not due.
    pub last_poll_at: Option<DateTime<Utc>>,
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
    #[error("the signature does not match")]
    InvalidSignature,
    #[error("the device is revoked")]
    Revoked,
    #[error("the nonce was already used")]
    Replayed,
    /// The replay store cannot be reached: refuse rather than risk a replay.
    #[error("replay protection is unavailable")]
    ReplayStoreUnavailable(#[source] UnexpectedError),
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

/// Time limits of the protocol.
#[derive(Debug, Clone, Copy)]
pub struct DeviceAuthPolicy {
    /// The largest accepted |server time − X-Timestamp|.
    pub max_clock_skew: Duration,
    /// How often `last_seen_at` is written at most, per device.
    pub last_seen_interval: Duration,
}

impl DeviceAuthPolicy {
    /// Nonces are kept twice the skew window: a request whose timestamp is
    /// still acceptable can never find its nonce forgotten.
    pub fn nonce_ttl(&self) -> Duration {
        self.max_clock_skew * 2
    }
}

impl Default for DeviceAuthPolicy {
    fn default() -> Self {
        Self {
            max_clock_skew: Duration::seconds(300),
            last_seen_interval: Duration::seconds(5),
        }
    }
}

/// Authenticates device requests.
#[derive(Debug, Clone)]
pub struct DeviceAuthService<D, V, N, C> {
    devices: D,
    verifier: V,
    nonces: N,
    clock: C,
    policy: DeviceAuthPolicy,
}

impl<D, V, N, C> DeviceAuthService<D, V, N, C>
where
    D: DeviceRepository,
    V: SignatureVerifier,
    N: NonceStore,
    C: Clock,
{
    pub fn new(devices: D, verifier: V, nonces: N, clock: C, policy: DeviceAuthPolicy) -> Self {
        Self {
            devices,
            verifier,
            nonces,
            clock,
            policy,
        }
    }

    pub fn policy(&self) -> &DeviceAuthPolicy {
        &self.policy
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Runs the protocol's checks 2–5 (the headers were parsed already).
    #[instrument(skip_all, fields(device_id = %request.headers.device_id()))]
    pub async fn authenticate(
        &self,
        request: &DeviceRequest<'_>,
    ) -> Result<AuthenticatedDevice, DeviceAuthError> {
        let headers = request.headers;
        let now = self.clock.now();
        let skew = now.timestamp().saturating_sub(headers.unix_seconds());
        if skew.unsigned_abs() > self.policy.max_clock_skew.num_seconds().unsigned_abs() {
            return Err(DeviceAuthError::ClockSkew {
                server_time: now,
                skew_seconds: skew,
            });
        }

        let id = DeviceId::from_uuid(uuid::Uuid::from_bytes(headers.device_uuid_bytes()));
        let Some(device) = self.devices.find_credentials(id).await? else {
            return Err(DeviceAuthError::InvalidSignature);
        };
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
        let mut valid = self.verifier.verify(id, &device.current, &message, signature)?;
        if !valid
            && let Some((previous, until)) = &device.previous
            && *until > now
        {
            valid = self.verifier.verify(id, previous, &message, signature)?;
        }
        if !valid {
            return Err(DeviceAuthError::InvalidSignature);
        }
        if device.revoked {
            return Err(DeviceAuthError::Revoked);
        }
        let fresh = self
            .nonces
            .check_and_record(id, headers.nonce(), self.policy.nonce_ttl())
            .await
            .map_err(DeviceAuthError::ReplayStoreUnavailable)?;
        if !fresh {
            return Err(DeviceAuthError::Replayed);
        }

        // Coalesced: at most one write per device per interval.
        let due = device
            .last_seen_at
            .is_none_or(|seen| now - seen >= self.policy.last_seen_interval);
        if due {
            self.devices
                .record_activity(
                    id,
                    super::ports::Activity::Seen,
                    now,
                    self.policy.last_seen_interval,
                )
                .await?;
        }
        Ok(AuthenticatedDevice {
            id,
            owner: device.owner,
            name: device.name,
            last_poll_at: device.last_poll_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use eagate_protocol::{HeaderSlot, SignedHeaders};

    use super::*;
    use crate::account::Registration;
    use crate::audit::ClientInfo;
    use crate::device::{DevicePolicy, DeviceWithSecret};
    use crate::testing::{FakeAccountWorld, FakeNonceStore, FakeSealer, FakeVerifier, fake_mac};

    struct Rig {
        world: FakeAccountWorld,
        nonces: FakeNonceStore,
        auth: DeviceAuthService<
            crate::testing::InMemoryDeviceRepository,
            FakeVerifier,
            FakeNonceStore,
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
        let nonces = FakeNonceStore::default();
        let auth = DeviceAuthService::new(
            world.store.devices(),
            FakeVerifier(sealer.clone()),
            nonces.clone(),
            world.clock.clone(),
            DeviceAuthPolicy::default(),
        );
        let devices = world.devices(sealer, DevicePolicy::default());
        Rig {
            world,
            nonces,
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
        let request = DeviceRequest {
            method: "POST",
            path: "/api/v1/device/heartbeat",
            query: "",
            headers,
            body_sha256_hex: "bodyhash",
        };
        rig.auth.authenticate(&request).await
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
        let seen = rig
            .devices
            .get(rig.owner, d.device.id)
            .await
            .unwrap()
            .last_seen_at;
        assert_eq!(seen, Some(rig.world.clock.now()));
        // Within the interval no new write happens; after it, one does.
        rig.world.clock.advance(Duration::seconds(2));
        call(
            &rig,
            &signed(
                &id,
                d.secret.expose(),
                rig.now(),
                "nonce-000000000002",
                "bodyhash",
            ),
        )
        .await
        .unwrap();
        assert_eq!(
            rig.devices
                .get(rig.owner, d.device.id)
                .await
                .unwrap()
                .last_seen_at,
            seen
        );
        rig.world.clock.advance(Duration::seconds(5));
        call(
            &rig,
            &signed(
                &id,
                d.secret.expose(),
                rig.now(),
                "nonce-000000000003",
                "bodyhash",
            ),
        )
        .await
        .unwrap();
        assert_eq!(
            rig.devices
                .get(rig.owner, d.device.id)
                .await
                .unwrap()
                .last_seen_at,
            Some(rig.world.clock.now())
        );
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
    async fn the_nonce_store_contract_holds_for_the_fake() {
        crate::testing::contracts::nonce_store_contract(&FakeNonceStore::default()).await;
    }

    #[tokio::test]
    async fn heartbeats_are_stored_for_the_owner_to_see() {
        let rig = rig().await;
        let d = rig.device("EA").await;
        let input = crate::device::HeartbeatInput {
            ea_version: Some("1.2.3".into()),
            balance: Some(1000.0),
            ..Default::default()
        };
        rig.devices.heartbeat(d.device.id, input).await.unwrap();
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
            rig.devices.heartbeat(d.device.id, bad).await,
            Err(crate::device::HeartbeatError::Invalid(_))
        ));
    }
}
