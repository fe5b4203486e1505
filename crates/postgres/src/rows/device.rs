use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use eagate_domain::UnexpectedError;
use eagate_domain::account::UserId;
use eagate_domain::audit::{AuditEvent, ClientInfo};
use eagate_domain::device::{
    Device, DeviceCredentials, DeviceId, DeviceName, Heartbeat, NewDevice, SealedSecret, SecretFingerprint,
    StoredSecrets,
};
use uuid::Uuid;

use crate::schema::{audit_events, device_heartbeats, devices};

/// The public columns of a device: never its secrets.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = devices, check_for_backend(diesel::pg::Pg))]
pub(crate) struct DeviceRow {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub last_poll_at: Option<DateTime<Utc>>,
    pub last_ack_at: Option<DateTime<Utc>>,
    pub secret_fingerprint: String,
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = device_heartbeats, check_for_backend(diesel::pg::Pg))]
pub(crate) struct HeartbeatRow {
    pub device_id: Uuid,
    pub received_at: DateTime<Utc>,
    pub heartbeat: serde_json::Value,
}

impl HeartbeatRow {
    pub fn new(device: DeviceId, h: &Heartbeat) -> Self {
        Self {
            device_id: device.as_uuid(),
            received_at: h.received_at,
            heartbeat: serde_json::json!({
                "ea_version": h.ea_version,
                "terminal_build": h.terminal_build,
                "broker": h.broker,
                "account_login": h.account_login,
                "balance": h.balance,
                "equity": h.equity,
            }),
        }
    }

    fn into_heartbeat(self) -> Heartbeat {
        let v = &self.heartbeat;
        let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
        Heartbeat {
            ea_version: text("ea_version"),
            terminal_build: v
                .get("terminal_build")
                .and_then(serde_json::Value::as_u64)
                .and_then(|b| u32::try_from(b).ok()),
            broker: text("broker"),
            account_login: v.get("account_login").and_then(serde_json::Value::as_u64),
            balance: v.get("balance").and_then(serde_json::Value::as_f64),
            equity: v.get("equity").and_then(serde_json::Value::as_f64),
            received_at: self.received_at,
        }
    }
}

impl DeviceRow {
    /// The domain device, with its latest heartbeat if there is one.
    pub fn into_device(self, heartbeat: Option<HeartbeatRow>) -> Device {
        let r = self;
        Device {
            id: DeviceId::from_uuid(r.id),
            owner: UserId::from_uuid(r.owner_id),
            name: DeviceName::from_trusted(r.name),
            created_at: r.created_at,
            updated_at: r.updated_at,
            revoked_at: r.revoked_at,
            last_seen_at: r.last_seen_at,
            last_poll_at: r.last_poll_at,
            last_ack_at: r.last_ack_at,
            secret_fingerprint: SecretFingerprint::new(r.secret_fingerprint),
            last_heartbeat: heartbeat.map(HeartbeatRow::into_heartbeat),
        }
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = devices, check_for_backend(diesel::pg::Pg))]
pub(crate) struct CredentialsRow {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub name: String,
    pub revoked_at: Option<DateTime<Utc>>,
    pub secret_key_id: String,
    pub secret_sealed: Vec<u8>,
    pub prev_secret_key_id: Option<String>,
    pub prev_secret_sealed: Option<Vec<u8>>,
    pub prev_secret_expires_at: Option<DateTime<Utc>>,
}

impl CredentialsRow {
    /// The device's credentials with its configuration and deployment
    /// revisions (0 without a row in `device_config_revisions` or
    /// `device_deployment_revisions`).
    pub fn with_revisions(
        self,
        config_revision: Option<i64>,
        deployment_revision: Option<i64>,
    ) -> DeviceCredentials {
        let r = self;
        DeviceCredentials {
            id: DeviceId::from_uuid(r.id),
            owner: UserId::from_uuid(r.owner_id),
            name: DeviceName::from_trusted(r.name),
            revoked: r.revoked_at.is_some(),
            current: SealedSecret {
                key_id: r.secret_key_id,
                ciphertext: r.secret_sealed,
            },
            previous: match (
                r.prev_secret_key_id,
                r.prev_secret_sealed,
                r.prev_secret_expires_at,
            ) {
                (Some(key_id), Some(ciphertext), Some(until)) => {
                    Some((SealedSecret { key_id, ciphertext }, until))
                }
                _ => None,
            },
            config_revision: config_revision.unwrap_or(0),
            deployment_revision: deployment_revision.unwrap_or(0),
        }
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = devices)]
pub(crate) struct NewDeviceRow<'a> {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub name: &'a str,
    pub name_key: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub secret_fingerprint: &'a str,
    pub secret_key_id: &'a str,
    pub secret_sealed: &'a [u8],
}

impl<'a> From<&'a NewDevice> for NewDeviceRow<'a> {
    fn from(d: &'a NewDevice) -> Self {
        Self {
            id: d.id.as_uuid(),
            owner_id: d.owner.as_uuid(),
            name: d.name.as_str(),
            name_key: d.name.key(),
            created_at: d.created_at,
            updated_at: d.created_at,
            secret_fingerprint: d.fingerprint.as_str(),
            secret_key_id: &d.secret.key_id,
            secret_sealed: &d.secret.ciphertext,
        }
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = devices, check_for_backend(diesel::pg::Pg))]
pub(crate) struct SecretsRow {
    pub id: Uuid,
    pub secret_key_id: String,
    pub secret_sealed: Vec<u8>,
    pub prev_secret_key_id: Option<String>,
    pub prev_secret_sealed: Option<Vec<u8>>,
}

impl From<SecretsRow> for StoredSecrets {
    fn from(r: SecretsRow) -> Self {
        Self {
            device: DeviceId::from_uuid(r.id),
            current: SealedSecret {
                key_id: r.secret_key_id,
                ciphertext: r.secret_sealed,
            },
            previous: match (r.prev_secret_key_id, r.prev_secret_sealed) {
                (Some(key_id), Some(ciphertext)) => Some(SealedSecret { key_id, ciphertext }),
                _ => None,
            },
        }
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events, check_for_backend(diesel::pg::Pg))]
pub(crate) struct AuditRow {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub action: String,
    pub user_id: Option<Uuid>,
    pub device_id: Option<Uuid>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub details: serde_json::Value,
}

impl From<&AuditEvent> for AuditRow {
    fn from(e: &AuditEvent) -> Self {
        Self {
            id: e.id,
            occurred_at: e.occurred_at,
            action: e.action.as_str().to_owned(),
            user_id: e.user_id.map(|u| u.as_uuid()),
            device_id: e.device_id.map(|d| d.as_uuid()),
            client_ip: e.client.ip.map(|ip| ip.to_string()),
            user_agent: e.client.user_agent.clone(),
            details: serde_json::Value::Object(
                e.details
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect(),
            ),
        }
    }
}

impl TryFrom<AuditRow> for AuditEvent {
    type Error = UnexpectedError;

    fn try_from(r: AuditRow) -> Result<Self, UnexpectedError> {
        let details: BTreeMap<String, String> = match r.details {
            serde_json::Value::Object(map) => map
                .into_iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect(),
            _ => BTreeMap::new(),
        };
        Ok(Self {
            id: r.id,
            occurred_at: r.occurred_at,
            action: r.action.parse()?,
            user_id: r.user_id.map(UserId::from_uuid),
            device_id: r.device_id.map(DeviceId::from_uuid),
            client: ClientInfo {
                ip: r.client_ip.and_then(|ip| ip.parse().ok()),
                user_agent: r.user_agent,
            },
            details,
        })
    }
}
