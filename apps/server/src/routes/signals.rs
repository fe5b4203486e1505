//! `/api/v1/signals`: the owner publishes, reads and cancels signals.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use eagate_domain::config::{AdaptOutcome, Adaptation};
use eagate_domain::signal::{
    Action, Delivery, DeliveryStatus, OrderType, Outcome, PublishInput, Side, Signal, SignalId,
    SignalWithDeliveries,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Problems;
use crate::extract::{Authorized, Json, act, optional_header, path_id};
use crate::problem::ApiError;
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig<'_>) {
    cfg.service(publish).service(list).service(get).service(cancel);
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PublishRequest {
    #[schema(pattern = "^[A-Za-z0-9._#-]{1,32}$", example = "EURUSD")]
    instrument: String,
    #[schema(schema_with = side, example = "buy")]
    side: String,
    #[schema(schema_with = order_type, example = "limit")]
    order_type: String,
    /// `open` (default) opens a position; `close` closes the device's positions on the instrument (the only signals a `close_only` device receives).
    #[schema(schema_with = action, example = "open")]
    action: Option<String>,
    #[schema(exclusive_minimum = 0, maximum = 1000, example = 0.25)]
    volume: f64,
    #[schema(exclusive_minimum = 0, example = 1.085)]
    entry_price: Option<f64>,
    #[schema(exclusive_minimum = 0, example = 1.08)]
    stop_loss: Option<f64>,
    #[schema(exclusive_minimum = 0, example = 1.095)]
    take_profit: Option<f64>,
    #[schema(max_length = 256, example = "breakout")]
    comment: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    #[schema(max_items = 1000, min_items = 1, value_type = Option<Vec<uuid::Uuid>>)]
    device_ids: Option<Vec<String>>,
}

impl From<PublishRequest> for PublishInput {
    fn from(b: PublishRequest) -> Self {
        Self {
            instrument: b.instrument,
            side: b.side,
            order_type: b.order_type,
            action: b.action,
            volume: b.volume,
            entry_price: b.entry_price,
            stop_loss: b.stop_loss,
            take_profit: b.take_profit,
            comment: b.comment,
            expires_at: b.expires_at,
            device_ids: b.device_ids,
        }
    }
}

/// `limit` stays text: the use case validates it and names it in its 422.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Signals per page.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 50, example = 50)]
    pub(crate) limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

/// `buy` or `sell`.
fn side() -> utoipa::openapi::schema::Object {
    super::text_enum(Side::ALL.iter().map(|s| s.as_str()))
}

/// `market`, `limit` or `stop`.
fn order_type() -> utoipa::openapi::schema::Object {
    super::text_enum(OrderType::ALL.iter().map(|t| t.as_str()))
}

/// `open` or `close`.
fn action() -> utoipa::openapi::schema::Object {
    super::text_enum(Action::ALL.iter().map(|a| a.as_str()))
}

/// What the EA reported: `executed`, `rejected` or `failed`.
pub(crate) fn outcome() -> utoipa::openapi::schema::Object {
    super::text_enum(Outcome::ALL.iter().map(|o| o.as_str()))
}

fn outcome_or_null() -> utoipa::openapi::schema::Object {
    super::text_enum_or_null(Outcome::ALL.iter().map(|o| o.as_str()))
}

/// Where one delivery stands.
fn delivery_status() -> utoipa::openapi::schema::Object {
    super::text_enum(
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Delivered,
            DeliveryStatus::Acknowledged,
            DeliveryStatus::Expired,
            DeliveryStatus::Cancelled,
            DeliveryStatus::Skipped,
        ]
        .map(DeliveryStatus::as_str),
    )
}

/// The order fields of a signal, as devices and owners see them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct OrderResponse {
    id: Uuid,
    instrument: String,
    #[schema(schema_with = side)]
    side: &'static str,
    #[schema(schema_with = order_type)]
    order_type: &'static str,
    #[schema(schema_with = action)]
    action: &'static str,
    /// For a device: the volume its configuration gave it.
    volume: f64,
    entry_price: Option<f64>,
    stop_loss: Option<f64>,
    take_profit: Option<f64>,
    comment: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl From<&Signal> for OrderResponse {
    fn from(s: &Signal) -> Self {
        Self {
            id: s.id.as_uuid(),
            instrument: s.order.instrument.as_str().to_owned(),
            side: s.order.side.as_str(),
            order_type: s.order.order_type.as_str(),
            action: s.order.action.as_str(),
            volume: s.order.volume,
            entry_price: s.order.entry_price,
            stop_loss: s.order.stop_loss,
            take_profit: s.order.take_profit,
            comment: s.order.comment.clone(),
            expires_at: s.expires_at,
            created_at: s.created_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DeliveryResponse {
    device_id: Uuid,
    #[schema(schema_with = delivery_status)]
    status: &'static str,
    first_polled_at: Option<DateTime<Utc>>,
    acknowledged_at: Option<DateTime<Utc>>,
    /// What the EA reported, once acknowledged.
    #[schema(schema_with = outcome_or_null)]
    outcome: Option<&'static str>,
    ticket: Option<i64>,
    fill_price: Option<f64>,
    message: Option<String>,
    /// Why the device's configuration refused the signal (status `skipped`).
    #[schema(schema_with = crate::routes::configs::skip_reason_or_null)]
    skip_reason: Option<&'static str>,
    /// The values the delivery was adapted with (`null` for deliveries older than configurations).
    adaptation: Option<AdaptationResponse>,
}

/// What the device's configuration made of the signal, and with what.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AdaptationResponse {
    /// The device's configuration revision at publish time.
    config_revision: i64,
    #[schema(schema_with = crate::routes::configs::mode)]
    mode: &'static str,
    #[schema(value_type = crate::routes::configs::Sizing)]
    sizing: serde_json::Value,
    max_lot: Option<f64>,
    /// The symbol and volume as published.
    signal_symbol: String,
    signal_volume: f64,
    /// The broker symbol and volume delivered (`null` when skipped).
    symbol: Option<String>,
    volume: Option<f64>,
    /// Whether `max_lot` reduced the volume.
    capped: bool,
}

impl From<&Adaptation> for AdaptationResponse {
    fn from(a: &Adaptation) -> Self {
        let (symbol, volume, capped) = match &a.outcome {
            AdaptOutcome::Deliver {
                symbol,
                volume,
                capped,
            } => (Some(symbol.clone()), Some(*volume), *capped),
            AdaptOutcome::Skip(_) => (None, None, false),
        };
        Self {
            config_revision: a.config_revision,
            mode: a.mode.as_str(),
            sizing: a.sizing.to_json(),
            max_lot: a.max_lot,
            signal_symbol: a.signal_symbol.clone(),
            signal_volume: a.signal_volume,
            symbol,
            volume,
            capped,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SignalResponse {
    #[serde(flatten)]
    order: OrderResponse,
    cancelled_at: Option<DateTime<Utc>>,
    deliveries: Vec<DeliveryResponse>,
}

fn render(s: &SignalWithDeliveries, now: DateTime<Utc>) -> SignalResponse {
    let delivery = |d: &Delivery| DeliveryResponse {
        device_id: d.device_id.as_uuid(),
        status: d.status(&s.signal, now).as_str(),
        first_polled_at: d.first_polled_at,
        acknowledged_at: d.ack.as_ref().map(|a| a.at),
        outcome: d.ack.as_ref().map(|a| a.outcome.as_str()),
        ticket: d.ack.as_ref().and_then(|a| a.ticket),
        fill_price: d.ack.as_ref().and_then(|a| a.fill_price),
        message: d.ack.as_ref().and_then(|a| a.message.clone()),
        skip_reason: d
            .adaptation
            .as_ref()
            .and_then(Adaptation::skipped)
            .map(|r| r.as_str()),
        adaptation: d.adaptation.as_ref().map(AdaptationResponse::from),
    };
    SignalResponse {
        order: OrderResponse::from(&s.signal),
        cancelled_at: s.signal.cancelled_at,
        deliveries: s.deliveries.iter().map(delivery).collect(),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SignalList {
    items: Vec<SignalResponse>,
    next_cursor: Option<String>,
}

fn signal_id(raw: &str) -> Result<SignalId, ApiError> {
    path_id(raw, "signal").map(SignalId::from_uuid)
}

/// The `Idempotency-Key` header, if sent (once, as visible ASCII).
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    optional_header(req, "Idempotency-Key")
}

/// Publish a signal
///
/// Creates one delivery per targeted device (all active devices when `device_ids` is absent). With an `Idempotency-Key`, a retry returns the first result (`Idempotent-Replayed: true`).
#[utoipa::path(
    operation_id = "publishSignal",
    tag = "signals",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried publish return the first result")),
    request_body = PublishRequest,
    responses((status = 201, description = "The signal with one delivery per targeted device (also for an idempotent replay)", body = SignalResponse), Problems),
    security(("bearer" = []), ("api_key" = ["signals:publish"]))
)]
#[post("")]
pub(crate) async fn publish(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authorized<act::PublishSignal>,
    body: Json<PublishRequest>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
    let input = PublishInput::from(body.0);
    let (signal, created) = state
        .signals
        .publish(who.0.user_id, &input, key.as_deref())
        .await?;
    if created {
        metrics::counter!("signals_published_total").increment(1);
        metrics::counter!("signal_deliveries_created_total").increment(signal.deliveries.len() as u64);
    }
    let location = format!("/api/v1/signals/{}", signal.signal.id);
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .insert_header(("Idempotent-Replayed", if created { "false" } else { "true" }))
        .json(render(&signal, state.signals.now())))
}

/// List signals
///
/// The caller's signals with their deliveries, newest first, one page at a time.
#[utoipa::path(
    operation_id = "listSignals",
    tag = "signals",
    params(ListQuery),
    responses((status = 200, description = "The caller's signals, newest first", body = SignalList), Problems),
    security(("bearer" = []), ("api_key" = ["signals:read"]))
)]
#[get("")]
pub(crate) async fn list(
    state: web::Data<AppState>,
    who: Authorized<act::ListSignals>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let page = state
        .signals
        .list(who.0.user_id, q.limit.as_deref(), q.cursor.as_deref())
        .await?;
    let now = state.signals.now();
    Ok(HttpResponse::Ok().json(SignalList {
        next_cursor: page.next.map(|c| c.to_string()),
        items: page.items.iter().map(|s| render(s, now)).collect(),
    }))
}

/// Get a signal
///
/// The signal and the state of each delivery.
#[utoipa::path(
    operation_id = "getSignal",
    tag = "signals",
    params(("id" = uuid::Uuid, Path, description = "The signal's id")),
    responses((status = 200, description = "The signal and its deliveries", body = SignalResponse), Problems),
    security(("bearer" = []), ("api_key" = ["signals:read"]))
)]
#[get("/{id}")]
pub(crate) async fn get(
    state: web::Data<AppState>,
    who: Authorized<act::ReadSignal>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let signal = state.signals.get(who.0.user_id, signal_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(render(&signal, state.signals.now())))
}

/// Cancel a signal
///
/// Deliveries not yet acknowledged become cancelled: devices stop receiving it. Idempotent.
#[utoipa::path(
    operation_id = "cancelSignal",
    tag = "signals",
    params(("id" = uuid::Uuid, Path, description = "The signal's id")),
    responses((status = 200, description = "The cancelled signal", body = SignalResponse), Problems),
    security(("bearer" = []), ("api_key" = ["signals:publish"]))
)]
#[post("/{id}/cancel")]
pub(crate) async fn cancel(
    state: web::Data<AppState>,
    who: Authorized<act::CancelSignal>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let signal = state.signals.cancel(who.0.user_id, signal_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(render(&signal, state.signals.now())))
}
