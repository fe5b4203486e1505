//! The per-device trading configuration: a document of optional fields
//! (a [`ConfigLayer`]) per device and one account-level default, inherited
//! field by field (account default → device; the most specific wins).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::account::UserId;
use crate::device::DeviceId;
use crate::pagination::Cursor;
use crate::signal::Instrument;
use crate::validation::{FieldError, ValidationErrors};

/// How a device trades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Opens and closes positions.
    Active,
    /// Receives only closing signals.
    CloseOnly,
    /// Receives nothing new.
    Paused,
}

impl Mode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::CloseOnly => "close_only",
            Self::Paused => "paused",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Active, Self::CloseOnly, Self::Paused]
            .into_iter()
            .find(|m| m.as_str() == raw)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a signal's volume becomes the device's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sizing {
    /// Always this many lots.
    Fixed { lots: f64 },
    /// The signal's volume times `factor`.
    Multiplier { factor: f64 },
    /// Risk `percent` of the account balance over the stop distance: sized
    /// by the EA, which knows the balance and the symbol's tick value.
    RiskPercent { percent: f64 },
}

impl Sizing {
    pub const MAX_LOTS: f64 = 1000.0;
    pub const MAX_FACTOR: f64 = 100.0;
    pub const MAX_PERCENT: f64 = 100.0;

    pub fn to_json(self) -> Value {
        match self {
            Self::Fixed { lots } => serde_json::json!({ "type": "fixed", "lots": lots }),
            Self::Multiplier { factor } => serde_json::json!({ "type": "multiplier", "factor": factor }),
            Self::RiskPercent { percent } => {
                serde_json::json!({ "type": "risk_percent", "percent": percent })
            }
        }
    }

    fn parse(value: &Value, errors: &mut ValidationErrors) -> Option<Self> {
        let invalid = |message: &str| FieldError::new("sizing", "invalid", message.to_owned());
        let Some(object) = value.as_object() else {
            errors.push(invalid(
                "must be an object: {\"type\": \"fixed\", \"lots\": n}, {\"type\": \"multiplier\", \
                 \"factor\": n} or {\"type\": \"risk_percent\", \"percent\": n}",
            ));
            return None;
        };
        let kind = object.get("type").and_then(Value::as_str);
        let (key, max, field) = match kind {
            Some("fixed") => ("lots", Self::MAX_LOTS, "sizing.lots"),
            Some("multiplier") => ("factor", Self::MAX_FACTOR, "sizing.factor"),
            Some("risk_percent") => ("percent", Self::MAX_PERCENT, "sizing.percent"),
            _ => {
                errors.push(FieldError::new(
                    "sizing.type",
                    "invalid",
                    "must be one of: fixed multiplier risk_percent",
                ));
                return None;
            }
        };
        if let Some(extra) = object.keys().find(|k| *k != "type" && *k != key) {
            errors.push(FieldError::new(
                "sizing",
                "unknown_field",
                format!(
                    "{extra:?} is not a field of {} sizing (expected \"{key}\")",
                    kind.unwrap_or_default()
                ),
            ));
            return None;
        }
        match object.get(key).and_then(Value::as_f64) {
            Some(n) if n.is_finite() && n > 0.0 && n <= max => Some(match kind {
                Some("fixed") => Self::Fixed { lots: n },
                Some("multiplier") => Self::Multiplier { factor: n },
                _ => Self::RiskPercent { percent: n },
            }),
            _ => {
                errors.push(FieldError::new(
                    field,
                    "out_of_range",
                    format!("must be a number greater than 0 and at most {max}"),
                ));
                None
            }
        }
    }
}

/// The fields of a configuration document, each optional: a field left out
/// (or `null`) is inherited.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConfigLayer {
    pub mode: Option<Mode>,
    pub sizing: Option<Sizing>,
    pub max_lot: Option<f64>,
    /// Signal symbols the device trades; absent: all.
    pub allowed_symbols: Option<BTreeSet<String>>,
    /// Signal symbol → broker symbol.
    pub symbol_map: Option<BTreeMap<String, String>>,
    pub max_open_trades: Option<u32>,
    pub max_daily_loss: Option<f64>,
    pub slippage_points: Option<u32>,
    pub magic_number: Option<i64>,
}

/// The document's field names, in order.
pub const FIELDS: [&str; 9] = [
    "mode",
    "sizing",
    "max_lot",
    "allowed_symbols",
    "symbol_map",
    "max_open_trades",
    "max_daily_loss",
    "slippage_points",
    "magic_number",
];

impl ConfigLayer {
    pub const MAX_LOT: f64 = 1000.0;
    pub const MAX_SYMBOLS: usize = 500;
    pub const MAX_OPEN_TRADES: u64 = 10_000;
    pub const MAX_DAILY_LOSS: f64 = 1e12;
    pub const MAX_SLIPPAGE_POINTS: u64 = 100_000;

    /// Validates a whole document, reporting every failing field. `null`
    /// fields are the same as absent ones (inherited).
    pub fn parse(document: &Value) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let Some(object) = document.as_object() else {
            errors.push(FieldError::new(
                "document",
                "invalid",
                "must be a JSON object of configuration fields",
            ));
            return Err(errors);
        };
        for key in object.keys() {
            if !FIELDS.contains(&key.as_str()) {
                errors.push(FieldError::new(
                    "document",
                    "unknown_field",
                    format!(
                        "{key:?} is not a configuration field (expected one of: {})",
                        FIELDS.join(" ")
                    ),
                ));
            }
        }
        let get = |k: &str| object.get(k).filter(|v| !v.is_null());
        let mut layer = Self::default();
        if let Some(v) = get("mode") {
            layer.mode = v.as_str().and_then(Mode::parse);
            if layer.mode.is_none() {
                errors.push(FieldError::new(
                    "mode",
                    "invalid",
                    "must be one of: active close_only paused",
                ));
            }
        }
        if let Some(v) = get("sizing") {
            layer.sizing = Sizing::parse(v, &mut errors);
        }
        layer.max_lot = get("max_lot").and_then(|v| positive(v, Self::MAX_LOT, "max_lot", &mut errors));
        if let Some(v) = get("allowed_symbols") {
            layer.allowed_symbols = parse_symbols(v, &mut errors);
        }
        if let Some(v) = get("symbol_map") {
            layer.symbol_map = parse_symbol_map(v, &mut errors);
        }
        layer.max_open_trades = get("max_open_trades")
            .and_then(|v| integer(v, 1, Self::MAX_OPEN_TRADES, "max_open_trades", &mut errors))
            .and_then(|n| u32::try_from(n).ok());
        layer.max_daily_loss = get("max_daily_loss")
            .and_then(|v| positive(v, Self::MAX_DAILY_LOSS, "max_daily_loss", &mut errors));
        layer.slippage_points = get("slippage_points")
            .and_then(|v| integer(v, 0, Self::MAX_SLIPPAGE_POINTS, "slippage_points", &mut errors))
            .and_then(|n| u32::try_from(n).ok());
        if let Some(v) = get("magic_number") {
            match v.as_i64() {
                Some(n) if n >= 0 => layer.magic_number = Some(n),
                _ => errors.push(FieldError::new(
                    "magic_number",
                    "out_of_range",
                    "must be an integer from 0 to 9223372036854775807",
                )),
            }
        }
        errors.into_result()?;
        Ok(layer)
    }

    /// The document: only the fields that are set.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        for field in FIELDS {
            if let Some(v) = self.field_json(field) {
                out.insert(field.to_owned(), v);
            }
        }
        Value::Object(out)
    }

    /// One field as JSON, `None` when not set.
    pub fn field_json(&self, field: &str) -> Option<Value> {
        match field {
            "mode" => self.mode.map(|m| Value::from(m.as_str())),
            "sizing" => self.sizing.map(Sizing::to_json),
            "max_lot" => self.max_lot.map(Value::from),
            "allowed_symbols" => self
                .allowed_symbols
                .as_ref()
                .map(|s| Value::from(s.iter().cloned().collect::<Vec<_>>())),
            "symbol_map" => self.symbol_map.as_ref().map(|m| {
                Value::Object(
                    m.iter()
                        .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                        .collect(),
                )
            }),
            "max_open_trades" => self.max_open_trades.map(Value::from),
            "max_daily_loss" => self.max_daily_loss.map(Value::from),
            "slippage_points" => self.slippage_points.map(Value::from),
            "magic_number" => self.magic_number.map(Value::from),
            _ => None,
        }
    }

    /// This layer over `base`: each field from `self` where set, else from
    /// `base`.
    pub fn over(&self, base: &Self) -> Self {
        Self {
            mode: self.mode.or(base.mode),
            sizing: self.sizing.or(base.sizing),
            max_lot: self.max_lot.or(base.max_lot),
            allowed_symbols: self
                .allowed_symbols
                .clone()
                .or_else(|| base.allowed_symbols.clone()),
            symbol_map: self.symbol_map.clone().or_else(|| base.symbol_map.clone()),
            max_open_trades: self.max_open_trades.or(base.max_open_trades),
            max_daily_loss: self.max_daily_loss.or(base.max_daily_loss),
            slippage_points: self.slippage_points.or(base.slippage_points),
            magic_number: self.magic_number.or(base.magic_number),
        }
    }

    /// The built-in values of the fields that have one: `mode` active and
    /// `sizing` a multiplier of 1 (the signal's volume as published).
    pub fn built_in() -> Self {
        Self {
            mode: Some(Mode::Active),
            sizing: Some(Sizing::Multiplier { factor: 1.0 }),
            ..Self::default()
        }
    }
}

fn positive(v: &Value, max: f64, field: &'static str, errors: &mut ValidationErrors) -> Option<f64> {
    match v.as_f64() {
        Some(n) if n.is_finite() && n > 0.0 && n <= max => Some(n),
        _ => {
            errors.push(FieldError::new(
                field,
                "out_of_range",
                format!("must be a number greater than 0 and at most {max}"),
            ));
            None
        }
    }
}

fn integer(v: &Value, min: u64, max: u64, field: &'static str, errors: &mut ValidationErrors) -> Option<u64> {
    match v.as_u64() {
        Some(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            errors.push(FieldError::new(
                field,
                "out_of_range",
                format!("must be an integer from {min} to {max}"),
            ));
            None
        }
    }
}

fn symbol(raw: &str, field: &'static str) -> Result<String, FieldError> {
    Instrument::parse(raw)
        .map(|i| i.as_str().to_owned())
        .map_err(|_| {
            FieldError::new(
                field,
                "invalid",
                format!("{raw:?} is not a symbol (1-32 characters of A-Z a-z 0-9 . _ # -)"),
            )
        })
}

fn parse_symbols(v: &Value, errors: &mut ValidationErrors) -> Option<BTreeSet<String>> {
    const FIELD: &str = "allowed_symbols";
    let Some(items) = v.as_array() else {
        errors.push(FieldError::new(
            FIELD,
            "invalid",
            "must be an array of symbols (or null for all)",
        ));
        return None;
    };
    if items.is_empty() || items.len() > ConfigLayer::MAX_SYMBOLS {
        errors.push(FieldError::new(
            FIELD,
            "out_of_range",
            format!(
                "must list 1 to {} symbols (or be null for all)",
                ConfigLayer::MAX_SYMBOLS
            ),
        ));
        return None;
    }
    let mut out = BTreeSet::new();
    let before = errors.errors().len();
    for item in items {
        match item.as_str().map(|s| symbol(s, FIELD)) {
            Some(Ok(s)) => {
                if !out.insert(s.clone()) {
                    errors.push(FieldError::new(
                        FIELD,
                        "duplicate",
                        format!("{s} is listed twice"),
                    ));
                }
            }
            Some(Err(e)) => errors.push(e),
            None => errors.push(FieldError::new(FIELD, "invalid", "must contain only strings")),
        }
    }
    (errors.errors().len() == before).then_some(out)
}

fn parse_symbol_map(v: &Value, errors: &mut ValidationErrors) -> Option<BTreeMap<String, String>> {
    const FIELD: &str = "symbol_map";
    let Some(entries) = v.as_object() else {
        errors.push(FieldError::new(
            FIELD,
            "invalid",
            "must be an object of signal symbol to broker symbol, e.g. {\"XAUUSD\": \"GOLD.m\"}",
        ));
        return None;
    };
    if entries.len() > ConfigLayer::MAX_SYMBOLS {
        errors.push(FieldError::new(
            FIELD,
            "out_of_range",
            format!("must map at most {} symbols", ConfigLayer::MAX_SYMBOLS),
        ));
        return None;
    }
    let mut out = BTreeMap::new();
    let before = errors.errors().len();
    for (from, to) in entries {
        let from = errors.collect(symbol(from, FIELD));
        let to = match to.as_str() {
            Some(to) => errors.collect(symbol(to, FIELD)),
            None => {
                errors.push(FieldError::new(
                    FIELD,
                    "invalid",
                    "must map each symbol to a string",
                ));
                None
            }
        };
        if let (Some(from), Some(to)) = (from, to) {
            out.insert(from, to);
        }
    }
    (errors.errors().len() == before).then_some(out)
}

/// Applies an RFC 7396 JSON merge patch to `target`.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(fields) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(map) = target {
                for (key, value) in fields {
                    if value.is_null() {
                        map.remove(key);
                    } else {
                        merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Applies a PATCH to a stored document: an RFC 7396 JSON merge patch,
/// except that `sizing` is one choice and is replaced whole (so switching
/// from `fixed` to `multiplier` does not keep `lots`). `symbol_map` merges
/// entry by entry (`null` removes a mapping).
pub fn patch_document(current: &Value, patch: &Value) -> Value {
    let mut doc = current.clone();
    if let (Value::Object(target), Some(sizing)) = (&mut doc, patch.get("sizing"))
        && sizing.is_object()
    {
        target.remove("sizing");
    }
    merge_patch(&mut doc, patch);
    doc
}

impl ConfigLayer {
    /// The document `patch` (a merge patch, see [`patch_document`]) makes
    /// of `current` (as [`ConfigLayer::to_json`] writes it), validated:
    /// what `ConfigService::patch` stores.
    pub fn parse_patch(current: &Value, patch: &Value) -> Result<Self, ValidationErrors> {
        if !patch.is_object() {
            return Err(FieldError::new(
                "document",
                "invalid",
                "a merge patch of the configuration must be a JSON object",
            )
            .into());
        }
        Self::parse(&patch_document(current, patch))
    }
}

/// Whose configuration a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigScope {
    /// The account default every device inherits.
    Account(UserId),
    Device(UserId, DeviceId),
}

impl ConfigScope {
    pub fn owner(self) -> UserId {
        match self {
            Self::Account(owner) | Self::Device(owner, _) => owner,
        }
    }

    pub fn device(self) -> Option<DeviceId> {
        match self {
            Self::Account(_) => None,
            Self::Device(_, device) => Some(device),
        }
    }
}

/// How a version came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigChange {
    Replaced,
    Patched,
    /// A copy of an earlier version's document.
    RolledBack {
        to: u32,
    },
}

impl ConfigChange {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Replaced => "replaced",
            Self::Patched => "patched",
            Self::RolledBack { .. } => "rolled_back",
        }
    }
}

/// One stored version of a scope's document. Version 0 is the empty
/// document a scope starts with; it is never stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigVersion {
    pub scope: ConfigScope,
    pub version: u32,
    pub layer: ConfigLayer,
    pub change: ConfigChange,
    pub created_at: DateTime<Utc>,
}

impl ConfigVersion {
    /// Where a history page continues: versions descend, so the version
    /// number (in the id's low bits) orders them.
    pub fn cursor(&self) -> Cursor {
        Cursor::new(self.created_at, uuid::Uuid::from_u128(u128::from(self.version)))
    }
}

/// A scope's current document (version 0 and empty when never written).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CurrentConfig {
    pub version: u32,
    pub layer: ConfigLayer,
}

/// Where an effective value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Device,
    Account,
    /// The built-in value (or unset).
    BuiltIn,
}

impl Source {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Device => "device",
            Self::Account => "account",
            Self::BuiltIn => "default",
        }
    }
}

/// A device's configuration as it applies: the merged fields, where each
/// comes from, and the versions it was merged from.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveConfig {
    pub values: ConfigLayer,
    pub sources: BTreeMap<&'static str, Source>,
    pub account_version: u32,
    /// `None` for the account default read on its own.
    pub device_version: Option<u32>,
    /// The device's configuration revision: changes whenever its effective
    /// configuration may have (its own document or the account default).
    pub revision: i64,
}

impl EffectiveConfig {
    /// Account default → device; the most specific wins, then the built-in
    /// values.
    pub fn merge(account: &CurrentConfig, device: Option<&CurrentConfig>, revision: i64) -> Self {
        let empty = ConfigLayer::default();
        let device_layer = device.map_or(&empty, |d| &d.layer);
        let built_in = ConfigLayer::built_in();
        let values = device_layer.over(&account.layer.over(&built_in));
        let sources = FIELDS
            .into_iter()
            .map(|f| {
                let source = if device_layer.field_json(f).is_some() {
                    Source::Device
                } else if account.layer.field_json(f).is_some() {
                    Source::Account
                } else {
                    Source::BuiltIn
                };
                (f, source)
            })
            .collect();
        Self {
            values,
            sources,
            account_version: account.version,
            device_version: device.map(|d| d.version),
            revision,
        }
    }

    pub fn mode(&self) -> Mode {
        self.values.mode.unwrap_or(Mode::Active)
    }

    pub fn sizing(&self) -> Sizing {
        self.values.sizing.unwrap_or(Sizing::Multiplier { factor: 1.0 })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn fields_of(result: Result<ConfigLayer, ValidationErrors>) -> Vec<&'static str> {
        result.unwrap_err().errors().iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_full_document_round_trips() {
        let doc = json!({
            "mode": "close_only",
            "sizing": {"type": "multiplier", "factor": 0.5},
            "max_lot": 2.0,
            "allowed_symbols": ["EURUSD", "XAUUSD"],
            "symbol_map": {"XAUUSD": "GOLD.m"},
            "max_open_trades": 5,
            "max_daily_loss": 250.0,
            "slippage_points": 20,
            "magic_number": 424242
        });
        let layer = ConfigLayer::parse(&doc).unwrap();
        assert_eq!(layer.mode, Some(Mode::CloseOnly));
        assert_eq!(layer.sizing, Some(Sizing::Multiplier { factor: 0.5 }));
        assert_eq!(layer.to_json(), doc);
        assert_eq!(ConfigLayer::parse(&json!({})).unwrap(), ConfigLayer::default());
        assert_eq!(
            ConfigLayer::parse(&json!({"mode": null})).unwrap(),
            ConfigLayer::default()
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let cases = [
            (json!({"mode": "on"}), "mode"),
            (json!({"mode": 1}), "mode"),
            (json!({"sizing": "fixed"}), "sizing"),
            (json!({"sizing": {"type": "martingale"}}), "sizing.type"),
            (json!({"sizing": {"type": "fixed", "lots": 0}}), "sizing.lots"),
            (json!({"sizing": {"type": "fixed", "lots": 1001}}), "sizing.lots"),
            (json!({"sizing": {"type": "fixed", "factor": 1}}), "sizing"),
            (
                json!({"sizing": {"type": "multiplier", "factor": -1}}),
                "sizing.factor",
            ),
            (
                json!({"sizing": {"type": "risk_percent", "percent": 101}}),
                "sizing.percent",
            ),
            (
                json!({"sizing": {"type": "risk_percent", "percent": "1"}}),
                "sizing.percent",
            ),
            (json!({"max_lot": 0}), "max_lot"),
            (json!({"max_lot": "1"}), "max_lot"),
            (json!({"allowed_symbols": []}), "allowed_symbols"),
            (json!({"allowed_symbols": "EURUSD"}), "allowed_symbols"),
            (json!({"allowed_symbols": ["EUR USD"]}), "allowed_symbols"),
            (
                json!({"allowed_symbols": ["EURUSD", "EURUSD"]}),
                "allowed_symbols",
            ),
            (json!({"allowed_symbols": [1]}), "allowed_symbols"),
            (json!({"symbol_map": ["XAUUSD"]}), "symbol_map"),
            (json!({"symbol_map": {"XAUUSD": 1}}), "symbol_map"),
            (json!({"symbol_map": {"XAU/USD": "GOLD"}}), "symbol_map"),
            (json!({"max_open_trades": 0}), "max_open_trades"),
            (json!({"max_open_trades": 1.5}), "max_open_trades"),
            (json!({"max_daily_loss": -5}), "max_daily_loss"),
            (json!({"slippage_points": -1}), "slippage_points"),
            (json!({"slippage_points": 100001}), "slippage_points"),
            (json!({"magic_number": -1}), "magic_number"),
            (json!({"magic_number": 18446744073709551615u64}), "magic_number"),
            (json!({"colour": "red"}), "document"),
            (json!([]), "document"),
        ];
        for (doc, field) in cases {
            assert_eq!(fields_of(ConfigLayer::parse(&doc)), [field], "{doc}");
        }
        let all = json!({"mode": "x", "max_lot": -1, "magic_number": "7"});
        assert_eq!(
            fields_of(ConfigLayer::parse(&all)),
            ["mode", "max_lot", "magic_number"]
        );
    }

    #[test]
    fn the_most_specific_value_wins_and_says_where_it_came_from() {
        let account = CurrentConfig {
            version: 3,
            layer: ConfigLayer::parse(&json!({"mode": "close_only", "max_lot": 1.0, "magic_number": 7}))
                .unwrap(),
        };
        let device = CurrentConfig {
            version: 2,
            layer: ConfigLayer::parse(&json!({"max_lot": 0.5})).unwrap(),
        };
        let eff = EffectiveConfig::merge(&account, Some(&device), 9);
        assert_eq!(eff.values.max_lot, Some(0.5));
        assert_eq!(eff.sources["max_lot"], Source::Device);
        assert_eq!(eff.mode(), Mode::CloseOnly);
        assert_eq!(eff.sources["mode"], Source::Account);
        assert_eq!(eff.sizing(), Sizing::Multiplier { factor: 1.0 });
        assert_eq!(eff.sources["sizing"], Source::BuiltIn);
        assert_eq!(eff.sources["symbol_map"], Source::BuiltIn);
        assert_eq!(eff.values.symbol_map, None);
        assert_eq!(
            (eff.account_version, eff.device_version, eff.revision),
            (3, Some(2), 9)
        );
    }

    #[test]
    fn a_patch_replaces_sizing_whole_and_merges_symbol_maps() {
        let doc = json!({"sizing": {"type": "fixed", "lots": 1.0}, "symbol_map": {"XAUUSD": "GOLD", "US30": "DJ30"}});
        let patched = patch_document(
            &doc,
            &json!({"sizing": {"type": "multiplier", "factor": 2.0}, "symbol_map": {"US30": null, "EURUSD": "EURUSD.m"}}),
        );
        assert_eq!(
            patched,
            json!({"sizing": {"type": "multiplier", "factor": 2.0}, "symbol_map": {"XAUUSD": "GOLD", "EURUSD": "EURUSD.m"}})
        );
        assert!(ConfigLayer::parse(&patched).is_ok());
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut doc, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}}));
        let mut doc = json!({"a": [1]});
        merge_patch(&mut doc, &json!({"a": [2], "b": {"c": null}}));
        assert_eq!(doc, json!({"a": [2], "b": {}}));
        let mut doc = json!({"a": 1});
        merge_patch(&mut doc, &json!(["x"]));
        assert_eq!(doc, json!(["x"]));
    }

    fn arb_layer() -> impl Strategy<Value = ConfigLayer> {
        let mode = prop::option::of(prop::sample::select(vec![
            Mode::Active,
            Mode::CloseOnly,
            Mode::Paused,
        ]));
        let sizing = prop::option::of(prop_oneof![
            (1u32..=100_000).prop_map(|n| Sizing::Fixed {
                lots: f64::from(n) / 100.0
            }),
            (1u32..=10_000).prop_map(|n| Sizing::Multiplier {
                factor: f64::from(n) / 100.0
            }),
            (1u32..=10_000).prop_map(|n| Sizing::RiskPercent {
                percent: f64::from(n) / 100.0
            }),
        ]);
        let symbols = prop::option::of(prop::collection::btree_set("[A-Z]{6}", 1..5));
        let map = prop::option::of(prop::collection::btree_map("[A-Z]{6}", "[A-Z]{4}\\.m", 0..4));
        (
            mode,
            sizing,
            prop::option::of(1u32..100_000),
            symbols,
            map,
            prop::option::of(1u32..10_000),
            prop::option::of(0u32..100_000),
            prop::option::of(0i64..i64::MAX),
        )
            .prop_map(
                |(mode, sizing, lot, allowed_symbols, symbol_map, trades, slippage, magic)| ConfigLayer {
                    mode,
                    sizing,
                    max_lot: lot.map(|n| f64::from(n) / 100.0),
                    allowed_symbols,
                    symbol_map,
                    max_open_trades: trades,
                    max_daily_loss: lot.map(f64::from),
                    slippage_points: slippage,
                    magic_number: magic,
                },
            )
    }

    proptest! {
        #[test]
        fn valid_layers_round_trip_through_json(layer in arb_layer()) {
            prop_assert_eq!(ConfigLayer::parse(&layer.to_json()).unwrap(), layer);
        }

        #[test]
        fn each_field_comes_from_the_most_specific_layer_that_sets_it(a in arb_layer(), d in arb_layer()) {
            let eff = EffectiveConfig::merge(
                &CurrentConfig { version: 1, layer: a.clone() },
                Some(&CurrentConfig { version: 1, layer: d.clone() }),
                1,
            );
            for f in FIELDS {
                let expected = d.field_json(f).or_else(|| a.field_json(f)).or_else(|| ConfigLayer::built_in().field_json(f));
                prop_assert_eq!(eff.values.field_json(f), expected);
                let source = if d.field_json(f).is_some() { Source::Device } else if a.field_json(f).is_some() { Source::Account } else { Source::BuiltIn };
                prop_assert_eq!(eff.sources[f], source);
            }
        }

        #[test]
        fn a_merge_patch_of_a_layer_yields_the_patched_fields(a in arb_layer(), d in arb_layer()) {
            // Patching with d's document sets d's fields over a; symbol
            // maps merge entry by entry.
            let doc = patch_document(&a.to_json(), &d.to_json());
            let patched = ConfigLayer::parse(&doc).unwrap();
            let mut expected = d.over(&a);
            if let (Some(am), Some(dm)) = (&a.symbol_map, &d.symbol_map) {
                let mut m = am.clone();
                m.extend(dm.clone());
                expected.symbol_map = Some(m);
            }
            prop_assert_eq!(patched, expected);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,200}") {
            if let Ok(v) = serde_json::from_str::<Value>(&s) {
                let _ = ConfigLayer::parse(&v);
            }
        }
    }
}
