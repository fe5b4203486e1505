//! `/api/v1/device`: the API Expert Advisors call, signed with protocol v1.

use actix_web::{HttpResponse, web};
use chrono::Utc;
use eagate_domain::device::HeartbeatInput;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::resource;
use crate::extract::SignedDevice;
use crate::problem::ApiError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/heartbeat").route(web::post().to(heartbeat)))
        .service(resource("/config").route(web::get().to(config)));
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
