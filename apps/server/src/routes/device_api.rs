//! `/api/v1/device`: the API Expert Advisors call, signed with protocol v1.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::Utc;
use eagate_domain::config::{DeviceConfigAnswer, device_etag};
use eagate_domain::device::HeartbeatInput;
use eagate_domain::signal::AckInput;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Problems;
use crate::extract::SignedDevice;
use crate::problem::ApiError;
use crate::routes::signals::{OrderResponse, outcome};
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig<'_>) {
    // Most traffic first: the router tries them in this order.
    cfg.service(poll).service(heartbeat).service(ack).service(config);
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeartbeatRequest {
    #[schema(max_length = 32, example = "2.1.0")]
    ea_version: Option<String>,
    #[schema(minimum = 0, maximum = 1000000, example = 4410)]
    terminal_build: Option<i64>,
    #[schema(max_length = 128, example = "Example Broker Ltd")]
    broker: Option<String>,
    #[schema(minimum = 0, example = 51234567)]
    account_login: Option<i64>,
    #[schema(maximum = 1e15, minimum = -1e15, example = 10250.75)]
    balance: Option<f64>,
    #[schema(maximum = 1e15, minimum = -1e15, example = 10100.5)]
    equity: Option<f64>,
}

impl From<HeartbeatRequest> for HeartbeatInput {
    fn from(body: HeartbeatRequest) -> Self {
        Self {
            ea_version: body.ea_version,
            terminal_build: body.terminal_build,
            broker: body.broker,
            account_login: body.account_login,
            balance: body.balance,
            equity: body.equity,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ServerTime {
    /// The server's Unix time, for clock correction.
    server_time: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ConfigResponse {
    poll_interval_seconds: u64,
    long_poll_max_seconds: u64,
    server_time: i64,
    device_id: Uuid,
    name: String,
    /// The trading configuration's revision (also the `ETag`, as `"r<revision>"`); polls report it as `config_revision`, so refetch only when it differs.
    #[schema(example = 7)]
    config_revision: i64,
    /// The effective trading configuration: every field, `null` when unset. The server already applied `mode`, `allowed_symbols`, `symbol_map`, `fixed`/`multiplier` sizing and `max_lot` to the signals it delivers; the EA applies `risk_percent` sizing, `max_open_trades`, `max_daily_loss`, `slippage_points` and `magic_number`.
    #[schema(value_type = crate::routes::configs::ConfigDocument)]
    trading: serde_json::Value,
}

/// Report the terminal's state
///
/// Stores what the EA reports about its terminal and answers with the server time. An empty body must be `{}`.
#[utoipa::path(
    operation_id = "sendHeartbeat",
    tag = "device",
    request_body = HeartbeatRequest,
    responses((status = 202, description = "Accepted: validated now, visible to the owner within one activity flush (`EAGATE_ACTIVITY_FLUSH_INTERVAL_MS`, 1 s by default)", body = ServerTime), Problems),
    security(("device_id" = [], "device_timestamp" = [], "device_nonce" = [], "device_signature" = []))
)]
#[post("/heartbeat")]
pub(crate) async fn heartbeat(
    state: web::Data<AppState>,
    signed: SignedDevice,
) -> Result<HttpResponse, ApiError> {
    let input = HeartbeatInput::from(signed.json::<HeartbeatRequest>()?);
    let heartbeat = state.device_auth.heartbeat(signed.device.id, input)?;
    Ok(HttpResponse::Accepted().json(ServerTime {
        server_time: heartbeat.received_at.timestamp(),
    }))
}

/// Get the device's settings
///
/// Poll interval, long-poll maximum, server time, the device's identity and its effective trading configuration. Send the last `ETag` in `If-None-Match`: while the configuration is unchanged the answer is 304 without a body (and without a database query).
#[utoipa::path(
    operation_id = "getDeviceConfig",
    tag = "device",
    params(("If-None-Match" = Option<String>, Header, description = "The `ETag` of the last answer (`\"r<config_revision>\"`)")),
    responses(
        (status = 200, description = "The device's settings", body = ConfigResponse, headers(("ETag" = String, description = "`\"r<config_revision>\"`"))),
        (status = 304, description = "Unchanged since the `ETag` in `If-None-Match`", headers(("ETag" = String, description = "`\"r<config_revision>\"`"))),
        Problems
    ),
    security(("device_id" = [], "device_timestamp" = [], "device_nonce" = [], "device_signature" = []))
)]
#[get("/config")]
pub(crate) async fn config(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed: SignedDevice,
) -> Result<HttpResponse, ApiError> {
    // Several If-None-Match headers are one list (RFC 9110 5.3).
    let if_none_match: Vec<&str> = req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .collect();
    let if_none_match = (!if_none_match.is_empty()).then(|| if_none_match.join(","));
    match state
        .configs
        .for_device(&signed.device, if_none_match.as_deref())
        .await?
    {
        DeviceConfigAnswer::NotModified { revision } => Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, device_etag(revision)))
            .finish()),
        DeviceConfigAnswer::Config(effective) => Ok(HttpResponse::Ok()
            .insert_header((header::ETAG, device_etag(effective.revision)))
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .json(ConfigResponse {
                poll_interval_seconds: state.device_api.poll_interval_seconds,
                long_poll_max_seconds: state.device_api.long_poll_max_seconds,
                server_time: state.device_auth.now().timestamp(),
                device_id: signed.device.id.as_uuid(),
                name: signed.device.name.as_str().to_owned(),
                config_revision: effective.revision,
                trading: crate::routes::configs::effective_json(&effective),
            })),
    }
}

/// `limit` and `wait` stay text: the use case validates them and names the
/// field in its 422.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct PollQuery {
    /// The most signals to return.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 10, example = 10)]
    pub(crate) limit: Option<String>,
    /// Seconds to wait for a signal when none is pending (long poll); 0
    /// answers at once. At most the server's `long_poll_max_seconds` (see
    /// GET /api/v1/device/config; 30 by default, 300 at most): a larger
    /// value is refused with 422.
    #[param(value_type = Option<u32>, minimum = 0, maximum = 300, default = 0, example = 25)]
    pub(crate) wait: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PollResponse {
    signals: Vec<OrderResponse>,
    server_time: i64,
    /// The device's trading configuration revision: when it differs from the one last fetched, GET /api/v1/device/config again.
    #[schema(example = 7)]
    config_revision: i64,
    /// The device's deployment revision: when it differs from the one last seen, GET /api/v1/device/deployment (a bundle to install, or 204).
    #[schema(example = 2)]
    deployment_revision: i64,
}

/// Poll for signals
///
/// The device's pending signals, oldest first. With `wait`, waits up to that many seconds for one to be published. A signal is returned until it is acknowledged.
#[utoipa::path(
    operation_id = "pollSignals",
    tag = "device",
    params(PollQuery),
    responses((status = 200, description = "Pending signals, oldest first", body = PollResponse), Problems),
    security(("device_id" = [], "device_timestamp" = [], "device_nonce" = [], "device_signature" = []))
)]
#[get("/poll")]
pub(crate) async fn poll(
    state: web::Data<AppState>,
    signed: SignedDevice,
    query: web::Query<PollQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let signals = state
        .signals
        .poll(&signed.device, q.limit.as_deref(), q.wait.as_deref())
        .await?;
    crate::metrics::hot()
        .signals_delivered
        .increment(signals.len() as u64);
    Ok(HttpResponse::Ok().json(PollResponse {
        signals: signals.iter().map(OrderResponse::from).collect(),
        server_time: state.device_auth.now().timestamp(),
        config_revision: signed.device.config_revision,
        deployment_revision: signed.device.deployment_revision,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AckRequest {
    #[schema(format = "uuid", example = "0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b")]
    signal_id: String,
    #[schema(schema_with = outcome, example = "executed")]
    outcome: String,
    #[schema(minimum = 0, example = 4812)]
    ticket: Option<i64>,
    #[schema(exclusive_minimum = 0, example = 1.0851)]
    fill_price: Option<f64>,
    #[schema(max_length = 512)]
    message: Option<String>,
}

impl From<AckRequest> for AckInput {
    fn from(body: AckRequest) -> Self {
        Self {
            signal_id: body.signal_id,
            outcome: body.outcome,
            ticket: body.ticket,
            fill_price: body.fill_price,
            message: body.message,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AckResponse {
    signal_id: String,
    #[schema(schema_with = outcome)]
    outcome: &'static str,
    ticket: Option<i64>,
    fill_price: Option<f64>,
    message: Option<String>,
    acknowledged_at: chrono::DateTime<Utc>,
}

/// Acknowledge a signal
///
/// Reports what the EA did with a signal. Repeating the same acknowledgement returns the first; a different outcome is a conflict.
#[utoipa::path(
    operation_id = "acknowledgeSignal",
    tag = "device",
    request_body = AckRequest,
    responses((status = 200, description = "The acknowledgement (the first one, on a repeat)", body = AckResponse), Problems),
    security(("device_id" = [], "device_timestamp" = [], "device_nonce" = [], "device_signature" = []))
)]
#[post("/ack")]
pub(crate) async fn ack(state: web::Data<AppState>, signed: SignedDevice) -> Result<HttpResponse, ApiError> {
    let input = AckInput::from(signed.json::<AckRequest>()?);
    let acknowledged = state.signals.acknowledge(signed.device.id, &input).await?;
    let ack = acknowledged.ack;
    // Each delivery's acknowledgement counts once; idempotent repeats don't.
    if acknowledged.first {
        metrics::counter!("signals_acknowledged_total", "outcome" => ack.outcome.as_str()).increment(1);
    }
    Ok(HttpResponse::Ok().json(AckResponse {
        signal_id: input.signal_id,
        outcome: ack.outcome.as_str(),
        ticket: ack.ticket,
        fill_price: ack.fill_price,
        message: ack.message,
        acknowledged_at: ack.at,
    }))
}
