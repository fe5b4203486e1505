//! Signal entities and their validation.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Duration, Utc};

use crate::account::UserId;
use crate::config::Adaptation;
use crate::device::DeviceId;
use crate::pagination::Cursor;
use crate::validation::{FieldError, ValidationErrors};

id_newtype!(
    /// A signal's id.
    SignalId
);

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            pub fn parse(raw: &str) -> Result<Self, FieldError> {
                match raw {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(FieldError::new(
                        $field,
                        "invalid",
                        concat!("must be one of:" $(, " ", $text)+),
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// Buy or sell.
    Side, "side" { Buy = "buy", Sell = "sell" }
);
text_enum!(
    /// How the order is placed.
    OrderType, "order_type" { Market = "market", Limit = "limit", Stop = "stop" }
);
text_enum!(
    /// Whether the signal opens a position or closes the device's positions
    /// on the instrument (a `close_only` device receives only closing ones).
    Action, "action" { Open = "open", Close = "close" }
);
text_enum!(
    /// What the EA did with a signal.
    Outcome, "outcome" { Executed = "executed", Rejected = "rejected", Failed = "failed" }
);

/// A validated instrument symbol: 1–32 of `[A-Za-z0-9._#-]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instrument(String);

impl Instrument {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let ok = (1..=32).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'#' | b'-'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::new(
                "instrument",
                "invalid",
                "must be 1-32 characters of A-Z a-z 0-9 . _ # -",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn from_trusted(raw: String) -> Self {
        Self(raw)
    }
}

/// The order a signal asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub instrument: Instrument,
    pub side: Side,
    pub order_type: OrderType,
    pub action: Action,
    pub volume: f64,
    pub entry_price: Option<f64>,
    pub stop_loss: Option<f64>,
    pub take_profit: Option<f64>,
    pub comment: Option<String>,
}

/// A published signal.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub id: SignalId,
    pub owner: UserId,
    pub order: Order,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl Signal {
    pub fn cursor(&self) -> Cursor {
        Cursor::new(self.created_at, self.id.as_uuid())
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// A device's acknowledgement of a signal.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    pub outcome: Outcome,
    pub ticket: Option<i64>,
    pub fill_price: Option<f64>,
    pub message: Option<String>,
    pub at: DateTime<Utc>,
}

/// The answer to an acknowledgement: the stored one, and whether this
/// request stored it (`false`: an idempotent repeat of the same outcome).
#[derive(Debug, Clone, PartialEq)]
pub struct Acknowledged {
    pub ack: Ack,
    pub first: bool,
}

/// One signal's delivery to one device.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub signal_id: SignalId,
    pub device_id: DeviceId,
    pub first_polled_at: Option<DateTime<Utc>>,
    pub ack: Option<Ack>,
    pub cancelled_at: Option<DateTime<Utc>>,
    /// How the device's configuration adapted the signal (`None` for
    /// deliveries stored before configurations existed).
    pub adaptation: Option<Adaptation>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Not yet returned by a poll.
    Pending,
    /// Returned by a poll, not yet acknowledged.
    Delivered,
    Acknowledged,
    /// Expired before being acknowledged.
    Expired,
    /// Cancelled by the owner before being acknowledged.
    Cancelled,
    /// Refused by the device's configuration: never delivered.
    Skipped,
}

impl DeliveryStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Acknowledged => "acknowledged",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::Skipped => "skipped",
        }
    }
}

impl Delivery {
    pub fn status(&self, signal: &Signal, now: DateTime<Utc>) -> DeliveryStatus {
        if self.adaptation.as_ref().is_some_and(|a| a.skipped().is_some()) {
            DeliveryStatus::Skipped
        } else if self.ack.is_some() {
            DeliveryStatus::Acknowledged
        } else if self.cancelled_at.is_some() {
            DeliveryStatus::Cancelled
        } else if signal.is_expired(now) {
            DeliveryStatus::Expired
        } else if self.first_polled_at.is_some() {
            DeliveryStatus::Delivered
        } else {
            DeliveryStatus::Pending
        }
    }
}

/// A signal with its deliveries, as its owner sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalWithDeliveries {
    pub signal: Signal,
    pub deliveries: Vec<Delivery>,
}

/// Raw publish input, as received.
#[derive(Debug, Clone, Default)]
pub struct PublishInput {
    pub instrument: String,
    pub side: String,
    pub order_type: String,
    /// `open` when absent.
    pub action: Option<String>,
    pub volume: f64,
    pub entry_price: Option<f64>,
    pub stop_loss: Option<f64>,
    pub take_profit: Option<f64>,
    pub comment: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub device_ids: Option<Vec<String>>,
}

/// A validated publish request; the target devices still have to be
/// checked against the owner's active devices.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalDraft {
    pub order: Order,
    pub expires_at: Option<DateTime<Utc>>,
    /// `None`: every active device of the owner.
    pub device_ids: Option<Vec<DeviceId>>,
}

impl SignalDraft {
    pub const MAX_VOLUME: f64 = 1000.0;
    pub const MAX_COMMENT_LEN: usize = 256;
    pub const MAX_DEVICES: usize = 1000;
    pub const MAX_LIFETIME: Duration = Duration::days(7);

    /// Validates every rule and reports every failing field.
    pub fn parse(input: &PublishInput, now: DateTime<Utc>) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let instrument = errors.collect(Instrument::parse(&input.instrument));
        let side = errors.collect(Side::parse(&input.side));
        let order_type = errors.collect(OrderType::parse(&input.order_type));
        let action = match &input.action {
            None => Some(Action::Open),
            Some(raw) => errors.collect(Action::parse(raw)),
        };
        if !(input.volume.is_finite() && input.volume > 0.0 && input.volume <= Self::MAX_VOLUME) {
            errors.push(FieldError::new(
                "volume",
                "out_of_range",
                "must be greater than 0 and at most 1000",
            ));
        }
        let mut price = |value: Option<f64>, field: &'static str| match value {
            Some(p) if p.is_finite() && p > 0.0 => Some(p),
            Some(_) => {
                errors.push(FieldError::new(
                    field,
                    "out_of_range",
                    "must be a finite number greater than 0",
                ));
                None
            }
            None => None,
        };
        let entry = price(input.entry_price, "entry_price");
        let stop_loss = price(input.stop_loss, "stop_loss");
        let take_profit = price(input.take_profit, "take_profit");

        if matches!(order_type, Some(OrderType::Limit | OrderType::Stop)) && input.entry_price.is_none() {
            errors.push(FieldError::new(
                "entry_price",
                "required",
                "is required for limit and stop orders",
            ));
        }
        if let Some(side) = side {
            // Low to high for a buy (stop-loss < entry < take-profit),
            // high to low for a sell.
            let before = |a: f64, b: f64| match side {
                Side::Buy => a < b,
                Side::Sell => a > b,
            };
            let rule = match side {
                Side::Buy => "for a buy, stop_loss < entry_price < take_profit (where given)",
                Side::Sell => "for a sell, take_profit < entry_price < stop_loss (where given)",
            };
            if let Some(sl) = stop_loss
                && entry.or(take_profit).is_some_and(|next| !before(sl, next))
            {
                errors.push(FieldError::new("stop_loss", "wrong_side", rule));
            }
            if let (Some(e), Some(tp)) = (entry, take_profit)
                && !before(e, tp)
            {
                errors.push(FieldError::new("take_profit", "wrong_side", rule));
            }
        }
        let comment = match &input.comment {
            Some(c) if c.chars().count() > Self::MAX_COMMENT_LEN => {
                errors.push(FieldError::new(
                    "comment",
                    "too_long",
                    "must be at most 256 characters",
                ));
                None
            }
            Some(c) if c.chars().any(char::is_control) => {
                errors.push(FieldError::new(
                    "comment",
                    "invalid_characters",
                    "must not contain control characters",
                ));
                None
            }
            other => other.clone(),
        };
        if let Some(at) = input.expires_at {
            if at <= now {
                errors.push(FieldError::new(
                    "expires_at",
                    "in_the_past",
                    "must be in the future",
                ));
            } else if at > now + Self::MAX_LIFETIME {
                errors.push(FieldError::new("expires_at", "too_far", "must be within 7 days"));
            }
        }
        let device_ids = match &input.device_ids {
            None => None,
            Some(ids) => {
                let mut parsed = Vec::with_capacity(ids.len());
                let mut seen = BTreeSet::new();
                if ids.is_empty() {
                    errors.push(FieldError::new(
                        "device_ids",
                        "empty",
                        "must name at least one device (or be left out)",
                    ));
                } else if ids.len() > Self::MAX_DEVICES {
                    errors.push(FieldError::new(
                        "device_ids",
                        "too_many",
                        "must name at most 1000 devices",
                    ));
                }
                for raw in ids {
                    match uuid::Uuid::try_parse(raw) {
                        Ok(id) if seen.insert(id) => parsed.push(DeviceId::from_uuid(id)),
                        Ok(_) => errors.push(FieldError::new(
                            "device_ids",
                            "duplicate",
                            format!("{raw} is listed twice"),
                        )),
                        Err(_) => errors.push(FieldError::new(
                            "device_ids",
                            "invalid",
                            format!("{raw:?} is not a UUID"),
                        )),
                    }
                }
                Some(parsed)
            }
        };
        errors.into_result()?;
        match (instrument, side, order_type, action) {
            (Some(instrument), Some(side), Some(order_type), Some(action)) => Ok(Self {
                order: Order {
                    instrument,
                    side,
                    order_type,
                    action,
                    volume: input.volume,
                    entry_price: entry,
                    stop_loss,
                    take_profit,
                    comment,
                },
                expires_at: input.expires_at,
                device_ids,
            }),
            _ => Err(ValidationErrors::new()),
        }
    }
}

/// Raw acknowledgement input, as received.
#[derive(Debug, Clone, Default)]
pub struct AckInput {
    pub signal_id: String,
    pub outcome: String,
    pub ticket: Option<i64>,
    pub fill_price: Option<f64>,
    pub message: Option<String>,
}

impl AckInput {
    pub const MAX_MESSAGE_LEN: usize = 512;

    /// Validates the fields; `at` becomes the acknowledgement time.
    pub fn parse(&self, at: DateTime<Utc>) -> Result<(SignalId, Ack), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let id = match uuid::Uuid::try_parse(&self.signal_id) {
            Ok(id) => Some(SignalId::from_uuid(id)),
            Err(_) => {
                errors.push(FieldError::new("signal_id", "invalid", "must be a UUID"));
                None
            }
        };
        let outcome = errors.collect(Outcome::parse(&self.outcome));
        if self.ticket.is_some_and(|t| t < 0) {
            errors.push(FieldError::new("ticket", "out_of_range", "must not be negative"));
        }
        if self.fill_price.is_some_and(|p| !(p.is_finite() && p > 0.0)) {
            errors.push(FieldError::new(
                "fill_price",
                "out_of_range",
                "must be a finite number greater than 0",
            ));
        }
        if let Some(m) = &self.message {
            if m.chars().count() > Self::MAX_MESSAGE_LEN {
                errors.push(FieldError::new(
                    "message",
                    "too_long",
                    "must be at most 512 characters",
                ));
            } else if m.chars().any(|c| c.is_control() && c != '\n') {
                errors.push(FieldError::new(
                    "message",
                    "invalid_characters",
                    "must not contain control characters",
                ));
            }
        }
        errors.into_result()?;
        match (id, outcome) {
            (Some(id), Some(outcome)) => Ok((
                id,
                Ack {
                    outcome,
                    ticket: self.ticket,
                    fill_price: self.fill_price,
                    message: self.message.clone(),
                    at,
                },
            )),
            _ => Err(ValidationErrors::new()),
        }
    }
}
