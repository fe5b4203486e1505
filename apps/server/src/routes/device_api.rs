//! `/api/v1/device`: the API Expert Advisors call, signed with protocol v1.

use actix_web::{HttpResponse, web};
use chrono::Utc;
use eagate_domain::device::HeartbeatInput;
use eagate_domain::signal::AckInput;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::resource;
use crate::extract::SignedDevice;
use crate::problem::ApiError;
use crate::routes::signals::OrderResponse;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/heartbeat").route(web::post().to(heartbeat)))
        .service(resource("/config").route(web::get().to(config)))
        .service(resource("/poll").route(web::get().to(poll)))
        .service(resource("/ack").route(web::post().to(ack)));
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeartbeatRequest {
    ea_version: Option<String>,
    terminal_build: Option<i64>,
    broker: Option<String>,
    account_login: Option<i64>,
    balance: Option<f64>,
    equity: Option<f64>,
}

#[derive(Debug, Serialize)]
struct ServerTime {
    /// The server's Unix time, for clock correction.
    server_time: i64,
}

#[derive(Debug, Serialize)]
struct ConfigResponse {
    poll_interval_seconds: u64,
    long_poll_max_seconds: u64,
    server_time: i64,
    device_id: Uuid,
    name: String,
}

async fn heartbeat(state: web::Data<AppState>, signed: SignedDevice) -> Result<HttpResponse, ApiError> {
    let body: HeartbeatRequest = signed.json()?;
    let input = HeartbeatInput {
        ea_version: body.ea_version,
        terminal_build: body.terminal_build,
        broker: body.broker,
        account_login: body.account_login,
        balance: body.balance,
        equity: body.equity,
    };
    let heartbeat = state.devices.heartbeat(signed.device.id, input).await?;
    Ok(HttpResponse::Ok().json(ServerTime {
        server_time: heartbeat.received_at.timestamp(),
    }))
}

async fn config(state: web::Data<AppState>, signed: SignedDevice) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(ConfigResponse {
        poll_interval_seconds: state.device_api.poll_interval_seconds,
        long_poll_max_seconds: state.device_api.long_poll_max_seconds,
        server_time: Utc::now().timestamp(),
        device_id: signed.device.id.as_uuid(),
        name: signed.device.name.as_str().to_owned(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PollQuery {
    limit: Option<String>,
    wait: Option<String>,
}

#[derive(Debug, Serialize)]
struct PollResponse {
    signals: Vec<OrderResponse>,
    server_time: i64,
}

async fn poll(
    state: web::Data<AppState>,
    signed: SignedDevice,
    query: web::Query<PollQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let signals = state
        .signals
        .poll(signed.device.id, q.limit.as_deref(), q.wait.as_deref())
        .await?;
    metrics::counter!("signals_delivered_total").increment(signals.len() as u64);
    Ok(HttpResponse::Ok().json(PollResponse {
        signals: signals.iter().map(OrderResponse::from).collect(),
        server_time: Utc::now().timestamp(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AckRequest {
    signal_id: String,
    outcome: String,
    ticket: Option<i64>,
    fill_price: Option<f64>,
    message: Option<String>,
}

#[derive(Debug, Serialize)]
struct AckResponse {
    signal_id: String,
    outcome: &'static str,
    ticket: Option<i64>,
    fill_price: Option<f64>,
    message: Option<String>,
    acknowledged_at: chrono::DateTime<Utc>,
}

async fn ack(state: web::Data<AppState>, signed: SignedDevice) -> Result<HttpResponse, ApiError> {
    let body: AckRequest = signed.json()?;
    let input = AckInput {
        signal_id: body.signal_id,
        outcome: body.outcome,
        ticket: body.ticket,
        fill_price: body.fill_price,
        message: body.message,
    };
    let ack = state.signals.acknowledge(signed.device.id, &input).await?;
    metrics::counter!("signals_acknowledged_total", "outcome" => ack.outcome.as_str()).increment(1);
    Ok(HttpResponse::Ok().json(AckResponse {
        signal_id: input.signal_id,
        outcome: ack.outcome.as_str(),
        ticket: ack.ticket,
        fill_price: ack.fill_price,
        message: ack.message,
        acknowledged_at: ack.at,
    }))
}
