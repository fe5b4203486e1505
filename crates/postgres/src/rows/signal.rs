use chrono::{DateTime, Utc};
use diesel::prelude::*;
use eagate_domain::UnexpectedError;
use eagate_domain::account::UserId;
use eagate_domain::device::DeviceId;
use eagate_domain::signal::{Ack, Delivery, Instrument, Order, OrderType, Outcome, Side, Signal, SignalId};
use uuid::Uuid;

use crate::schema::{signal_deliveries, signals};

fn corrupt(what: &str, value: &str) -> UnexpectedError {
    UnexpectedError::msg(format!("stored {what} {value:?} is not valid"))
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = signals, check_for_backend(diesel::pg::Pg))]
pub(crate) struct SignalRow {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub instrument: String,
    pub side: String,
    pub order_type: String,
    pub volume: f64,
    pub entry_price: Option<f64>,
    pub stop_loss: Option<f64>,
    pub take_profit: Option<f64>,
    pub comment: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl TryFrom<SignalRow> for Signal {
    type Error = UnexpectedError;

    fn try_from(r: SignalRow) -> Result<Self, UnexpectedError> {
        Ok(Self {
            id: SignalId::from_uuid(r.id),
            owner: UserId::from_uuid(r.owner_id),
            order: Order {
                instrument: Instrument::from_trusted(r.instrument),
                side: Side::parse(&r.side).map_err(|_| corrupt("side", &r.side))?,
                order_type: OrderType::parse(&r.order_type)
                    .map_err(|_| corrupt("order type", &r.order_type))?,
                volume: r.volume,
                entry_price: r.entry_price,
                stop_loss: r.stop_loss,
                take_profit: r.take_profit,
                comment: r.comment,
            },
            expires_at: r.expires_at,
            created_at: r.created_at,
            cancelled_at: r.cancelled_at,
        })
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = signals)]
pub(crate) struct NewSignalRow<'a> {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub instrument: &'a str,
    pub side: &'static str,
    pub order_type: &'static str,
    pub volume: f64,
    pub entry_price: Option<f64>,
    pub stop_loss: Option<f64>,
    pub take_profit: Option<f64>,
    pub comment: Option<&'a str>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub idempotency_key: Option<&'a str>,
    pub request_description: Option<&'a str>,
}

impl<'a> NewSignalRow<'a> {
    pub fn new(s: &'a Signal, idempotency: Option<&'a (String, String)>) -> Self {
        Self {
            id: s.id.as_uuid(),
            owner_id: s.owner.as_uuid(),
            instrument: s.order.instrument.as_str(),
            side: s.order.side.as_str(),
            order_type: s.order.order_type.as_str(),
            volume: s.order.volume,
            entry_price: s.order.entry_price,
            stop_loss: s.order.stop_loss,
            take_profit: s.order.take_profit,
            comment: s.order.comment.as_deref(),
            expires_at: s.expires_at,
            created_at: s.created_at,
            idempotency_key: idempotency.map(|(k, _)| k.as_str()),
            request_description: idempotency.map(|(_, d)| d.as_str()),
        }
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = signal_deliveries, check_for_backend(diesel::pg::Pg))]
pub(crate) struct DeliveryRow {
    pub signal_id: Uuid,
    pub device_id: Uuid,
    pub first_polled_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub ticket: Option<i64>,
    pub fill_price: Option<f64>,
    pub message: Option<String>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl DeliveryRow {
    pub fn ack(&self) -> Result<Option<Ack>, UnexpectedError> {
        match (&self.outcome, self.acknowledged_at) {
            (Some(outcome), Some(at)) => Ok(Some(Ack {
                outcome: Outcome::parse(outcome).map_err(|_| corrupt("outcome", outcome))?,
                ticket: self.ticket,
                fill_price: self.fill_price,
                message: self.message.clone(),
                at,
            })),
            _ => Ok(None),
        }
    }
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = UnexpectedError;

    fn try_from(r: DeliveryRow) -> Result<Self, UnexpectedError> {
        Ok(Self {
            ack: r.ack()?,
            signal_id: SignalId::from_uuid(r.signal_id),
            device_id: DeviceId::from_uuid(r.device_id),
            first_polled_at: r.first_polled_at,
            cancelled_at: r.cancelled_at,
        })
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = signal_deliveries)]
pub(crate) struct NewDeliveryRow {
    pub signal_id: Uuid,
    pub device_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}
