use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use eagate_domain::UnexpectedError;
use eagate_domain::account::UserId;
use eagate_domain::config::{AdaptOutcome, Adaptation, Mode, SkipReason};
use eagate_domain::device::DeviceId;
use eagate_domain::signal::{
    Ack, Action, Delivery, Instrument, Order, OrderType, Outcome, Side, Signal, SignalId,
};
use serde::{Deserialize, Serialize};
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
    pub action: String,
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
                action: Action::parse(&r.action).map_err(|_| corrupt("action", &r.action))?,
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
    pub action: &'static str,
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
            action: s.order.action.as_str(),
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
    pub adaptation: Option<serde_json::Value>,
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
            adaptation: r
                .adaptation
                .map(|v| {
                    serde_json::from_value::<AdaptationJson>(v)
                        .map_err(|e| UnexpectedError::msg(format!("stored adaptation is not valid: {e}")))
                        .and_then(Adaptation::try_from)
                })
                .transpose()?,
        })
    }
}

/// A signal's deliveries, column by column: inserted with one statement
/// over `unnest` of five arrays, whatever the number of devices (a
/// multi-row `VALUES` list needs eight bind parameters a row, and
/// PostgreSQL allows 65,535 a statement). Adaptations are sent once each:
/// devices with the same configuration share one, and each row names its
/// adaptation by its 1-based place in `adaptations` (PostgreSQL parses
/// every JSONB parameter it is sent; a fleet of 1,000 alike devices
/// would otherwise be 1,000 parses of the same document).
#[derive(Debug, Default)]
pub(crate) struct NewDeliveryColumns {
    pub device_ids: Vec<Uuid>,
    pub instruments: Vec<Option<String>>,
    pub volumes: Vec<Option<f64>>,
    pub skip_reasons: Vec<Option<&'static str>>,
    pub adaptation_numbers: Vec<i32>,
    pub adaptations: Vec<serde_json::Value>,
}

impl NewDeliveryColumns {
    pub fn new(deliveries: &[(DeviceId, Adaptation)]) -> Self {
        let mut columns = Self {
            device_ids: Vec::with_capacity(deliveries.len()),
            instruments: Vec::with_capacity(deliveries.len()),
            volumes: Vec::with_capacity(deliveries.len()),
            skip_reasons: Vec::with_capacity(deliveries.len()),
            adaptation_numbers: Vec::with_capacity(deliveries.len()),
            adaptations: Vec::new(),
        };
        let mut numbers: HashMap<serde_json::Value, i32> = HashMap::new();
        // Alike devices usually come one after another: the previous
        // adaptation's number is reused without building its document.
        let mut previous: Option<(&Adaptation, i32)> = None;
        for (device, adaptation) in deliveries {
            let (instrument, volume, skip_reason) = match &adaptation.outcome {
                AdaptOutcome::Deliver { symbol, volume, .. } => (Some(symbol.clone()), Some(*volume), None),
                AdaptOutcome::Skip(reason) => (None, None, Some(reason.as_str())),
            };
            columns.device_ids.push(device.as_uuid());
            columns.instruments.push(instrument);
            columns.volumes.push(volume);
            columns.skip_reasons.push(skip_reason);
            let number = match previous {
                Some((last, number)) if last == adaptation => number,
                _ => {
                    let json = serde_json::to_value(AdaptationJson::from(adaptation)).unwrap_or_default();
                    let next = i32::try_from(numbers.len() + 1).unwrap_or(i32::MAX);
                    *numbers.entry(json).or_insert_with_key(|json| {
                        columns.adaptations.push(json.clone());
                        next
                    })
                }
            };
            previous = Some((adaptation, number));
            columns.adaptation_numbers.push(number);
        }
        columns
    }
}

/// How an adaptation is stored (`signal_deliveries.adaptation`).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct AdaptationJson {
    config_revision: i64,
    mode: String,
    sizing: serde_json::Value,
    max_lot: Option<f64>,
    signal_symbol: String,
    signal_volume: f64,
    symbol: Option<String>,
    volume: Option<f64>,
    #[serde(default)]
    capped: bool,
    skip_reason: Option<String>,
}

impl From<&Adaptation> for AdaptationJson {
    fn from(a: &Adaptation) -> Self {
        let (symbol, volume, capped, skip_reason) = match &a.outcome {
            AdaptOutcome::Deliver {
                symbol,
                volume,
                capped,
            } => (Some(symbol.clone()), Some(*volume), *capped, None),
            AdaptOutcome::Skip(r) => (None, None, false, Some(r.as_str().to_owned())),
        };
        Self {
            config_revision: a.config_revision,
            mode: a.mode.as_str().to_owned(),
            sizing: a.sizing.to_json(),
            max_lot: a.max_lot,
            signal_symbol: a.signal_symbol.clone(),
            signal_volume: a.signal_volume,
            symbol,
            volume,
            capped,
            skip_reason,
        }
    }
}

impl TryFrom<AdaptationJson> for Adaptation {
    type Error = UnexpectedError;

    fn try_from(j: AdaptationJson) -> Result<Self, UnexpectedError> {
        let sizing = eagate_domain::config::ConfigLayer::parse(&serde_json::json!({ "sizing": j.sizing }))
            .ok()
            .and_then(|l| l.sizing)
            .ok_or_else(|| corrupt("sizing", &j.sizing.to_string()))?;
        let outcome = match (j.skip_reason, j.symbol, j.volume) {
            (Some(r), _, _) => {
                AdaptOutcome::Skip(SkipReason::parse(&r).ok_or_else(|| corrupt("skip reason", &r))?)
            }
            (None, Some(symbol), Some(volume)) => AdaptOutcome::Deliver {
                symbol,
                volume,
                capped: j.capped,
            },
            _ => return Err(UnexpectedError::msg("stored adaptation has neither outcome")),
        };
        Ok(Self {
            config_revision: j.config_revision,
            mode: Mode::parse(&j.mode).ok_or_else(|| corrupt("mode", &j.mode))?,
            sizing,
            max_lot: j.max_lot,
            signal_symbol: j.signal_symbol,
            signal_volume: j.signal_volume,
            outcome,
        })
    }
}

#[cfg(test)]
mod tests {
    use eagate_domain::account::UserId;
    use eagate_domain::testing::contracts::fixtures::{new_signal, unknown_device};

    use super::NewDeliveryColumns;

    #[test]
    fn alike_devices_send_their_adaptation_once() {
        let devices: Vec<_> = (0..1000).map(|_| unknown_device()).collect();
        let mut new = new_signal(UserId::from_uuid(uuid::Uuid::now_v7()), 0, &devices, None);
        let mut other = new.deliveries[0].1.clone();
        other.config_revision += 1;
        new.deliveries[1].1 = other.clone();
        new.deliveries[3].1 = other;
        let columns = NewDeliveryColumns::new(&new.deliveries);
        assert_eq!(
            columns.adaptations.len(),
            2,
            "one document per distinct adaptation"
        );
        assert_eq!(columns.adaptation_numbers.len(), 1000);
        assert_eq!(
            &columns.adaptation_numbers[..5],
            [1, 2, 1, 2, 1],
            "rows name theirs, 1-based"
        );
        assert_eq!(
            columns.adaptation_numbers.iter().filter(|n| **n == 1).count(),
            998
        );
        assert_eq!(columns.device_ids.len(), 1000);
    }
}
