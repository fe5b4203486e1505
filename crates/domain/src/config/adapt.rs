//! Delivery applies a device's configuration to a signal on the server:
//! the mode, the allowed symbols, the symbol map, the sizing and the lot cap.

use std::fmt;

use super::model::{EffectiveConfig, Mode, Sizing};
use crate::signal::{Action, Order};

/// Why a device's configuration refused a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// The device was paused when the signal was published.
    Paused,
    /// The device was `close_only` and the signal opens a position.
    CloseOnly,
    /// The signal's symbol is not in `allowed_symbols`.
    SymbolNotAllowed,
    /// `risk_percent` sizing needs the signal's stop loss.
    NoStopLoss,
    /// Scaled below the smallest lot (0.01).
    VolumeTooSmall,
}

impl SkipReason {
    pub const ALL: [Self; 5] = [
        Self::Paused,
        Self::CloseOnly,
        Self::SymbolNotAllowed,
        Self::NoStopLoss,
        Self::VolumeTooSmall,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Paused => "paused",
            Self::CloseOnly => "close_only",
            Self::SymbolNotAllowed => "symbol_not_allowed",
            Self::NoStopLoss => "no_stop_loss",
            Self::VolumeTooSmall => "volume_too_small",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }

    /// A sentence for the owner.
    pub const fn describe(self) -> &'static str {
        match self {
            Self::Paused => "the device was paused when the signal was published",
            Self::CloseOnly => "the device was close_only and the signal opens a position",
            Self::SymbolNotAllowed => "the signal's symbol is not in the device's allowed_symbols",
            Self::NoStopLoss => "risk_percent sizing needs a stop loss and the signal has none",
            Self::VolumeTooSmall => "the scaled volume is below 0.01 lots",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a delivery becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum AdaptOutcome {
    /// Delivered as this order: the broker's symbol and the device's
    /// volume (for `risk_percent`, the signal's volume capped by `max_lot`:
    /// the EA sizes by risk within it).
    Deliver {
        symbol: String,
        volume: f64,
        capped: bool,
    },
    /// Recorded, never delivered.
    Skip(SkipReason),
}

/// The values a delivery was adapted with, kept with it so the owner can see
/// why a device traded what it did.
#[derive(Debug, Clone, PartialEq)]
pub struct Adaptation {
    pub config_revision: i64,
    pub mode: Mode,
    pub sizing: Sizing,
    pub max_lot: Option<f64>,
    pub signal_symbol: String,
    pub signal_volume: f64,
    pub outcome: AdaptOutcome,
}

impl Adaptation {
    pub fn skipped(&self) -> Option<SkipReason> {
        match self.outcome {
            AdaptOutcome::Skip(reason) => Some(reason),
            AdaptOutcome::Deliver { .. } => None,
        }
    }

    /// The order as the device receives it, `None` when skipped.
    pub fn apply(&self, order: &Order) -> Option<Order> {
        match &self.outcome {
            AdaptOutcome::Deliver { symbol, volume, .. } => Some(Order {
                instrument: crate::signal::Instrument::from_trusted(symbol.clone()),
                volume: *volume,
                ..order.clone()
            }),
            AdaptOutcome::Skip(_) => None,
        }
    }
}

/// The smallest lot delivered; volumes are rounded to it.
pub const LOT_STEP: f64 = 0.01;

fn round_lots(volume: f64) -> f64 {
    (volume / LOT_STEP).round() * LOT_STEP
}

/// Adapts `order` to a device's configuration: mode, allowed symbols (as
/// the signal names them), symbol map, sizing rounded to 0.01 lots, then
/// the `max_lot` cap.
pub fn adapt(order: &Order, config: &EffectiveConfig) -> Adaptation {
    let mode = config.mode();
    let sizing = config.sizing();
    let max_lot = config.values.max_lot;
    let symbol = order.instrument.as_str();
    let outcome = (|| {
        match mode {
            Mode::Paused => return AdaptOutcome::Skip(SkipReason::Paused),
            Mode::CloseOnly if order.action == Action::Open => {
                return AdaptOutcome::Skip(SkipReason::CloseOnly);
            }
            _ => {}
        }
        if let Some(allowed) = &config.values.allowed_symbols
            && !allowed.contains(symbol)
        {
            return AdaptOutcome::Skip(SkipReason::SymbolNotAllowed);
        }
        let mapped = config
            .values
            .symbol_map
            .as_ref()
            .and_then(|m| m.get(symbol))
            .map_or(symbol, String::as_str);
        let scaled = match sizing {
            Sizing::Fixed { lots } => lots,
            Sizing::Multiplier { factor } => order.volume * factor,
            Sizing::RiskPercent { .. } if order.stop_loss.is_none() && order.action == Action::Open => {
                return AdaptOutcome::Skip(SkipReason::NoStopLoss);
            }
            Sizing::RiskPercent { .. } => order.volume,
        };
        let capped = max_lot.is_some_and(|max| scaled > max);
        let volume = round_lots(max_lot.map_or(scaled, |max| scaled.min(max)));
        if volume < LOT_STEP / 2.0 {
            return AdaptOutcome::Skip(SkipReason::VolumeTooSmall);
        }
        AdaptOutcome::Deliver {
            symbol: mapped.to_owned(),
            volume,
            capped,
        }
    })();
    Adaptation {
        config_revision: config.revision,
        mode,
        sizing,
        max_lot,
        signal_symbol: symbol.to_owned(),
        signal_volume: order.volume,
        outcome,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::config::{ConfigLayer, CurrentConfig};
    use crate::signal::{Instrument, OrderType, Side};

    fn order(symbol: &str, volume: f64) -> Order {
        Order {
            instrument: Instrument::parse(symbol).unwrap(),
            side: Side::Buy,
            order_type: OrderType::Market,
            action: Action::Open,
            volume,
            entry_price: None,
            stop_loss: None,
            take_profit: None,
            comment: None,
        }
    }

    fn config(doc: serde_json::Value) -> EffectiveConfig {
        let account = CurrentConfig {
            version: 1,
            layer: ConfigLayer::parse(&doc).unwrap(),
        };
        EffectiveConfig::merge(&account, None, 4)
    }

    fn delivered(a: &Adaptation) -> (String, f64, bool) {
        match &a.outcome {
            AdaptOutcome::Deliver {
                symbol,
                volume,
                capped,
            } => (symbol.clone(), *volume, *capped),
            AdaptOutcome::Skip(r) => panic!("skipped: {r}"),
        }
    }

    #[test]
    fn without_configuration_a_signal_is_delivered_as_published() {
        let a = adapt(&order("EURUSD", 0.37), &config(json!({})));
        assert_eq!(delivered(&a), ("EURUSD".into(), 0.37, false));
        assert_eq!((a.config_revision, a.mode), (4, Mode::Active));
    }

    #[test]
    fn symbols_are_filtered_by_their_signal_name_then_mapped() {
        let c = config(json!({"allowed_symbols": ["XAUUSD"], "symbol_map": {"XAUUSD": "GOLD.m"}}));
        assert_eq!(delivered(&adapt(&order("XAUUSD", 1.0), &c)).0, "GOLD.m");
        assert_eq!(
            adapt(&order("EURUSD", 1.0), &c).skipped(),
            Some(SkipReason::SymbolNotAllowed)
        );
    }

    #[test]
    fn volume_is_scaled_rounded_and_capped() {
        let half = config(json!({"sizing": {"type": "multiplier", "factor": 0.3}, "max_lot": 0.5}));
        assert_eq!(
            delivered(&adapt(&order("EURUSD", 1.0), &half)),
            ("EURUSD".into(), 0.3, false)
        );
        assert_eq!(
            delivered(&adapt(&order("EURUSD", 10.0), &half)),
            ("EURUSD".into(), 0.5, true)
        );
        assert_eq!(
            adapt(&order("EURUSD", 0.01), &half).skipped(),
            Some(SkipReason::VolumeTooSmall)
        );
        let fixed = config(json!({"sizing": {"type": "fixed", "lots": 0.2}}));
        assert_eq!(delivered(&adapt(&order("EURUSD", 7.0), &fixed)).1, 0.2);
    }

    #[test]
    fn modes_decide_what_is_delivered() {
        let paused = config(json!({"mode": "paused"}));
        let close = Order {
            action: Action::Close,
            ..order("EURUSD", 1.0)
        };
        assert_eq!(adapt(&close, &paused).skipped(), Some(SkipReason::Paused));
        let close_only = config(json!({"mode": "close_only"}));
        assert_eq!(
            adapt(&order("EURUSD", 1.0), &close_only).skipped(),
            Some(SkipReason::CloseOnly)
        );
        assert_eq!(adapt(&close, &close_only).skipped(), None);
    }

    #[test]
    fn risk_sizing_needs_a_stop_loss_and_is_left_to_the_ea_within_the_cap() {
        let risk = config(json!({"sizing": {"type": "risk_percent", "percent": 1.0}, "max_lot": 2.0}));
        assert_eq!(
            adapt(&order("EURUSD", 1.0), &risk).skipped(),
            Some(SkipReason::NoStopLoss)
        );
        let with_stop = Order {
            stop_loss: Some(1.05),
            ..order("EURUSD", 3.0)
        };
        assert_eq!(delivered(&adapt(&with_stop, &risk)), ("EURUSD".into(), 2.0, true));
    }

    proptest! {
        #[test]
        fn a_delivered_volume_is_at_least_a_lot_step_and_never_above_the_cap(
            volume in 0.01f64..1000.0,
            factor in 0.01f64..100.0,
            max_lot in prop::option::of(0.01f64..1000.0),
        ) {
            let mut doc = json!({"sizing": {"type": "multiplier", "factor": factor}});
            if let Some(m) = max_lot { doc["max_lot"] = json!(m); }
            let a = adapt(&order("EURUSD", volume), &config(doc));
            if let AdaptOutcome::Deliver { volume: v, capped, .. } = a.outcome {
                prop_assert!(v >= LOT_STEP - 1e-9);
                if let Some(m) = max_lot { prop_assert!(v <= m + LOT_STEP / 2.0 + 1e-9); }
                prop_assert_eq!(capped, max_lot.is_some_and(|m| volume * factor > m));
            } else {
                prop_assert!(volume * factor < LOT_STEP || max_lot.is_some_and(|m| m < LOT_STEP / 2.0));
            }
        }
    }
}
