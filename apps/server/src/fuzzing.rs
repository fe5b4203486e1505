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
use eagate_domain::account::{LoginAttempt, Password, Registration};
use eagate_domain::device::{DeviceName, DevicePolicy, DeviceStatus, Heartbeat, HeartbeatInput};
use eagate_domain::pagination::PageRequest;
use eagate_domain::signal::{Ack, AckInput, PublishInput, SignalDraft, SignalId};
use eagate_domain::{FieldError, ValidationErrors};
use serde::de::DeserializeOwned;

use crate::extract::{parse_object, parse_optional_object};
use crate::problem::ApiError;
use crate::routes::{audit, auth, device_api, devices, signals};

/// Every operation that takes a JSON body.
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
}

impl JsonBody {
    pub const ALL: [Self; 10] = [
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
    ];
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
    })
}

/// Every operation that reads a query string.
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
}

impl QueryString {
    pub const ALL: [Self; 4] = [Self::ListDevices, Self::ListSignals, Self::ListAudit, Self::Poll];
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
    }
}
