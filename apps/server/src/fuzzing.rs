//! Entry points for the fuzz targets in `fuzz/` (not part of the API).
//!
//! Each function runs what a handler runs on one request input, without
//! a server: the JSON body goes through the same extractor rules and the
//! same DTO, then into the domain parser the handler or its use case
//! applies; a query string goes through the same query extractor and
//! DTO, then into the same domain parsing. Handlers and these functions
//! share the DTOs and their conversions, so they cannot drift apart.

use actix_web::ResponseError as _;
use actix_web::web;
use chrono::{DateTime, Utc};
use eagate_domain::access::{
    ApiKeyPolicy, AuditFilter, AuditQueryInput, CreateApiKeyInput, ValidApiKeyInput,
};
use eagate_domain::account::{LoginAttempt, Password, Registration};
use eagate_domain::bundle::{BundleName, BundleVersion, ReleaseNotes};
use eagate_domain::config::ConfigLayer;
use eagate_domain::deployment::{Label, NewDeploymentInput, Rollout, Target, TargetStatus};
use eagate_domain::device::{DeviceName, DevicePolicy, DeviceStatus, Heartbeat, HeartbeatInput};
use eagate_domain::pagination::PageRequest;
use eagate_domain::signal::{Ack, AckInput, PublishInput, SignalDraft, SignalId};
use eagate_domain::{FieldError, ValidationErrors};
use serde::de::DeserializeOwned;

use crate::extract::{parse_object, parse_optional_object};
use crate::problem::ApiError;
use crate::routes::{
    admin, api_keys, audit, auth, bundles, configs, deployments, device_api, devices, signals,
};

/// Every operation that takes a JSON body (`documented_ranges.rs` checks
/// this list against the OpenAPI document, so a new one cannot be missed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonBody {
    /// `POST /api/v1/auth/register`
    Register,
    /// `POST /api/v1/auth/login`
    Login,
    /// `POST /api/v1/auth/refresh`
    Refresh,
    /// `POST /api/v1/auth/password`
    ChangePassword,
    /// `DELETE /api/v1/auth/me`
    DeleteAccount,
    /// `POST /api/v1/devices` and `PATCH /api/v1/devices/{id}`
    DeviceName,
    /// `POST /api/v1/devices/{id}/rotate-secret` (the body is optional)
    RotateSecret,
    /// `POST /api/v1/signals`
    Publish,
    /// `POST /api/v1/device/heartbeat`
    Heartbeat,
    /// `POST /api/v1/device/ack`
    Ack,
    /// `POST /api/v1/api-keys`
    CreateApiKey,
    /// `PUT /api/v1/config` and `PUT /api/v1/devices/{id}/config`
    ConfigPut,
    /// `PATCH /api/v1/config` and `PATCH /api/v1/devices/{id}/config` (a
    /// merge patch, here of an empty document)
    ConfigPatch,
    /// `POST /api/v1/config/rollback` and `POST /api/v1/devices/{id}/config/rollback`
    Rollback,
    /// `POST /api/v1/deployments`
    CreateDeployment,
    /// `POST /api/v1/device/deployments/{id}/status`
    DeploymentStatus,
    /// `PUT /api/v1/devices/{id}/labels`
    DeviceLabels,
}

impl JsonBody {
    pub const ALL: [Self; 17] = [
        Self::Register,
        Self::Login,
        Self::Refresh,
        Self::ChangePassword,
        Self::DeleteAccount,
        Self::DeviceName,
        Self::RotateSecret,
        Self::Publish,
        Self::Heartbeat,
        Self::Ack,
        Self::CreateApiKey,
        Self::ConfigPut,
        Self::ConfigPatch,
        Self::Rollback,
        Self::CreateDeployment,
        Self::DeploymentStatus,
        Self::DeviceLabels,
    ];

    /// The documented operations (method, path) that take this body.
    pub fn operations(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::Register => &[("POST", "/api/v1/auth/register")],
            Self::Login => &[("POST", "/api/v1/auth/login")],
            Self::Refresh => &[("POST", "/api/v1/auth/refresh")],
            Self::ChangePassword => &[("POST", "/api/v1/auth/password")],
            Self::DeleteAccount => &[("DELETE", "/api/v1/auth/me")],
            Self::DeviceName => &[("POST", "/api/v1/devices"), ("PATCH", "/api/v1/devices/{id}")],
            Self::RotateSecret => &[("POST", "/api/v1/devices/{id}/rotate-secret")],
            Self::Publish => &[("POST", "/api/v1/signals")],
            Self::Heartbeat => &[("POST", "/api/v1/device/heartbeat")],
            Self::Ack => &[("POST", "/api/v1/device/ack")],
            Self::CreateApiKey => &[("POST", "/api/v1/api-keys")],
            Self::ConfigPut => &[("PUT", "/api/v1/config"), ("PUT", "/api/v1/devices/{id}/config")],
            Self::ConfigPatch => &[
                ("PATCH", "/api/v1/config"),
                ("PATCH", "/api/v1/devices/{id}/config"),
            ],
            Self::Rollback => &[
                ("POST", "/api/v1/config/rollback"),
                ("POST", "/api/v1/devices/{id}/config/rollback"),
            ],
            Self::CreateDeployment => &[("POST", "/api/v1/deployments")],
            Self::DeploymentStatus => &[("POST", "/api/v1/device/deployments/{id}/status")],
            Self::DeviceLabels => &[("PUT", "/api/v1/devices/{id}/labels")],
        }
    }
}

/// What a body became: the validated value the handler hands on.
#[derive(Debug, Clone)]
pub enum ParsedBody {
    Register(Registration),
    Login(LoginAttempt),
    /// The refresh token, checked only by looking it up.
    Refresh(String),
    ChangePassword {
        current: Password,
        new: Password,
    },
    DeleteAccount(Password),
    DeviceName(DeviceName),
    /// The grace period in seconds, checked against the default policy.
    RotateSecret(i64),
    Publish(SignalDraft),
    Heartbeat(Heartbeat),
    Ack(SignalId, Ack),
    CreateApiKey(ValidApiKeyInput),
    /// A replaced (PUT) or merge-patched (PATCH) configuration document.
    Config(ConfigLayer),
    /// The version to roll back to (looked up, not validated further).
    Rollback(u32),
    CreateDeployment(Target, Rollout),
    DeploymentStatus(TargetStatus, Option<String>),
    DeviceLabels(Vec<Label>),
}

/// An input refused with a problem.
#[derive(Debug, Clone)]
pub struct Refused {
    pub status: u16,
    /// The problem's `code`.
    pub code: &'static str,
    /// The problem's detail and field messages, as a client gets them.
    pub text: String,
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Self {
        Self {
            status: e.status_code().as_u16(),
            code: e.kind().code(),
            text: format!("{e:?}"),
        }
    }
}

fn invalid(errors: ValidationErrors) -> Refused {
    ApiError::validation(&errors).into()
}

fn field(error: FieldError) -> Refused {
    invalid(error.into())
}

/// Parses `bytes` as `body`'s request body, at time `now`, exactly as the
/// server does after reading a body sent as `application/json`.
pub fn parse_json_body(body: JsonBody, bytes: &[u8], now: DateTime<Utc>) -> Result<ParsedBody, Refused> {
    fn object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Refused> {
        parse_object(bytes).map_err(Refused::from)
    }
    Ok(match body {
        JsonBody::Register => {
            let b: auth::RegisterRequest = object(bytes)?;
            ParsedBody::Register(Registration::parse(&b.email, &b.username, &b.password).map_err(invalid)?)
        }
        JsonBody::Login => {
            let b: auth::LoginRequest = object(bytes)?;
            ParsedBody::Login(LoginAttempt::parse(&b.login, &b.password).map_err(invalid)?)
        }
        JsonBody::Refresh => ParsedBody::Refresh(object::<auth::RefreshRequest>(bytes)?.refresh_token),
        JsonBody::ChangePassword => {
            // As `AccountService::change_password` validates them.
            let b: auth::ChangePasswordRequest = object(bytes)?;
            let mut errors = ValidationErrors::new();
            let current = errors.collect(Password::parse_candidate(&b.current_password, "current_password"));
            let new = errors.collect(Password::parse_new(&b.new_password, "new_password", &[]));
            match (current, new) {
                (Some(current), Some(new)) => ParsedBody::ChangePassword { current, new },
                _ => return Err(invalid(errors)),
            }
        }
        JsonBody::DeleteAccount => {
            let b: auth::DeleteAccountRequest = object(bytes)?;
            ParsedBody::DeleteAccount(Password::parse_candidate(&b.password, "password").map_err(field)?)
        }
        JsonBody::DeviceName => {
            let b: devices::NameRequest = object(bytes)?;
            ParsedBody::DeviceName(DeviceName::parse(&b.name).map_err(field)?)
        }
        JsonBody::RotateSecret => {
            let b: devices::RotateRequest = parse_optional_object(bytes)?;
            ParsedBody::RotateSecret(
                DevicePolicy::default()
                    .rotation_grace(b.grace_seconds)
                    .map_err(field)?,
            )
        }
        JsonBody::Publish => {
            let input = PublishInput::from(object::<signals::PublishRequest>(bytes)?);
            ParsedBody::Publish(SignalDraft::parse(&input, now).map_err(invalid)?)
        }
        JsonBody::Heartbeat => {
            let input = HeartbeatInput::from(object::<device_api::HeartbeatRequest>(bytes)?);
            ParsedBody::Heartbeat(Heartbeat::parse(input, now).map_err(invalid)?)
        }
        JsonBody::Ack => {
            let input = AckInput::from(object::<device_api::AckRequest>(bytes)?);
            let (id, ack) = input.parse(now).map_err(invalid)?;
            ParsedBody::Ack(id, ack)
        }
        JsonBody::CreateApiKey => {
            let input = CreateApiKeyInput::from(object::<api_keys::CreateApiKeyRequest>(bytes)?);
            ParsedBody::CreateApiKey(
                input
                    .parse(now, ApiKeyPolicy::default().max_lifetime)
                    .map_err(invalid)?,
            )
        }
        JsonBody::ConfigPut => {
            let document: serde_json::Value = object(bytes)?;
            ParsedBody::Config(ConfigLayer::parse(&document).map_err(invalid)?)
        }
        JsonBody::ConfigPatch => {
            let patch: serde_json::Value = object(bytes)?;
            let empty = ConfigLayer::default().to_json();
            ParsedBody::Config(ConfigLayer::parse_patch(&empty, &patch).map_err(invalid)?)
        }
        JsonBody::Rollback => ParsedBody::Rollback(object::<configs::RollbackRequest>(bytes)?.version),
        JsonBody::CreateDeployment => {
            let input = NewDeploymentInput::from(object::<deployments::CreateDeploymentRequest>(bytes)?);
            let (target, rollout) = input.parse().map_err(invalid)?;
            ParsedBody::CreateDeployment(target, rollout)
        }
        JsonBody::DeploymentStatus => {
            let b: deployments::StatusReport = object(bytes)?;
            let (status, reason) =
                eagate_domain::deployment::parse_report(&b.status, b.reason.as_deref()).map_err(invalid)?;
            ParsedBody::DeploymentStatus(status, reason)
        }
        JsonBody::DeviceLabels => {
            let b: deployments::DeviceLabels = object(bytes)?;
            ParsedBody::DeviceLabels(Label::parse_set(&b.labels).map_err(field)?)
        }
    })
}

/// Every operation that reads a query string (`documented_ranges.rs`
/// checks this list against the OpenAPI document).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryString {
    /// `GET /api/v1/devices`
    ListDevices,
    /// `GET /api/v1/signals`
    ListSignals,
    /// `GET /api/v1/audit`
    ListAudit,
    /// `GET /api/v1/device/poll`
    Poll,
    /// `GET /api/v1/admin/accounts`
    AdminAccounts,
    /// `GET /api/v1/admin/audit`
    AdminAudit,
    /// `GET /api/v1/api-keys`
    ListApiKeys,
    /// `GET /api/v1/bundles`
    ListBundles,
    /// `POST /api/v1/bundles` (the bundle's metadata)
    UploadBundle,
    /// `GET /api/v1/config/history` and `GET /api/v1/devices/{id}/config/history`
    ConfigHistory,
    /// `GET /api/v1/deployments`
    ListDeployments,
}

impl QueryString {
    pub const ALL: [Self; 11] = [
        Self::ListDevices,
        Self::ListSignals,
        Self::ListAudit,
        Self::Poll,
        Self::AdminAccounts,
        Self::AdminAudit,
        Self::ListApiKeys,
        Self::ListBundles,
        Self::UploadBundle,
        Self::ConfigHistory,
        Self::ListDeployments,
    ];

    /// The documented operations (method, path) that read this query.
    pub fn operations(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::ListDevices => &[("GET", "/api/v1/devices")],
            Self::ListSignals => &[("GET", "/api/v1/signals")],
            Self::ListAudit => &[("GET", "/api/v1/audit")],
            Self::Poll => &[("GET", "/api/v1/device/poll")],
            Self::AdminAccounts => &[("GET", "/api/v1/admin/accounts")],
            Self::AdminAudit => &[("GET", "/api/v1/admin/audit")],
            Self::ListApiKeys => &[("GET", "/api/v1/api-keys")],
            Self::ListBundles => &[("GET", "/api/v1/bundles")],
            Self::UploadBundle => &[("POST", "/api/v1/bundles")],
            Self::ConfigHistory => &[
                ("GET", "/api/v1/config/history"),
                ("GET", "/api/v1/devices/{id}/config/history"),
            ],
            Self::ListDeployments => &[("GET", "/api/v1/deployments")],
        }
    }
}

/// What a query string became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedQuery {
    Page {
        status: Option<DeviceStatus>,
        page: PageRequest,
    },
    /// `limit` and `wait` as sent, each decoded (the poll use case checks
    /// their ranges against the configured long-poll maximum).
    Poll {
        limit: Option<String>,
        wait: Option<String>,
    },
    /// An administrator's account search (`q`, trimmed).
    Accounts {
        search: Option<String>,
        page: PageRequest,
    },
    AdminAudit {
        filter: AuditFilter,
        page: PageRequest,
    },
    Upload {
        name: BundleName,
        version: BundleVersion,
        notes: ReleaseNotes,
    },
}

fn query<T: DeserializeOwned>(raw: &str) -> Result<T, Refused> {
    // The error handler `routes::register` installs for every query.
    web::Query::<T>::from_query(raw)
        .map(web::Query::into_inner)
        .map_err(|e| {
            ApiError::new(
                crate::problem::ProblemKind::MalformedQuery,
                format!("The query string is invalid: {e}."),
            )
            .into()
        })
}

/// As `DeviceService::list` (and, without `status`, the signal and audit
/// listings) validate them.
fn page(status: Option<&str>, limit: Option<&str>, cursor: Option<&str>) -> Result<ParsedQuery, Refused> {
    let mut errors = ValidationErrors::new();
    let status = status.and_then(|s| errors.collect(DeviceStatus::parse(s)));
    let page = match PageRequest::parse(limit, cursor) {
        Ok(page) => Some(page),
        Err(e) => {
            e.into_iter().for_each(|e| errors.push(e));
            None
        }
    };
    match page.filter(|_| errors.is_empty()) {
        Some(page) => Ok(ParsedQuery::Page { status, page }),
        None => Err(invalid(errors)),
    }
}

/// Parses `raw` (what follows the `?`) as `operation`'s query string,
/// as the server does.
pub fn parse_query(operation: QueryString, raw: &str) -> Result<ParsedQuery, Refused> {
    match operation {
        QueryString::ListDevices => {
            let q: devices::ListQuery = query(raw)?;
            page(q.status.as_deref(), q.limit.as_deref(), q.cursor.as_deref())
        }
        QueryString::ListSignals => {
            let q: signals::ListQuery = query(raw)?;
            page(None, q.limit.as_deref(), q.cursor.as_deref())
        }
        QueryString::ListAudit => {
            let q: audit::AuditQuery = query(raw)?;
            page(None, q.limit.as_deref(), q.cursor.as_deref())
        }
        QueryString::Poll => {
            let q: device_api::PollQuery = query(raw)?;
            Ok(ParsedQuery::Poll {
                limit: q.limit,
                wait: q.wait,
            })
        }
        QueryString::AdminAccounts => {
            let q: admin::AccountsQuery = query(raw)?;
            let (search, page) = eagate_domain::access::parse_account_search(
                q.q.as_deref(),
                q.limit.as_deref(),
                q.cursor.as_deref(),
            )
            .map_err(invalid)?;
            Ok(ParsedQuery::Accounts {
                search: search.map(str::to_owned),
                page,
            })
        }
        QueryString::AdminAudit => {
            let q: admin::AdminAuditQuery = query(raw)?;
            let (filter, page) = AuditQueryInput::from(q).parse().map_err(invalid)?;
            Ok(ParsedQuery::AdminAudit { filter, page })
        }
        QueryString::ListApiKeys => {
            let q: api_keys::ApiKeyListQuery = query(raw)?;
            page(None, q.limit.as_deref(), q.cursor.as_deref())
        }
        QueryString::ListBundles => {
            let q: bundles::BundleListQuery = query(raw)?;
            page(None, q.limit.as_deref(), q.cursor.as_deref())
        }
        QueryString::UploadBundle => {
            let q: bundles::UploadQuery = query(raw)?;
            let (name, version, notes) = eagate_domain::bundle::parse_bundle_meta(
                q.name.as_deref(),
                q.version.as_deref(),
                q.notes.as_deref(),
            )
            .map_err(invalid)?;
            Ok(ParsedQuery::Upload { name, version, notes })
        }
        QueryString::ConfigHistory => {
            let q: configs::HistoryQuery = query(raw)?;
            page(None, q.limit.as_deref(), q.cursor.as_deref())
        }
        QueryString::ListDeployments => {
            let q: deployments::DeploymentListQuery = query(raw)?;
            page(None, q.limit.as_deref(), q.cursor.as_deref())
        }
    }
}
