use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::{Method, StatusCode, Url};
use serde::{Deserialize, Serialize};

use crate::credentials::CredentialsError;
use crate::signer::{Signer, new_nonce};

/// An RFC 9457 problem answered by the server.
#[derive(Debug, Clone, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    /// The stable code, e.g. `clock-skew`, `replayed`.
    pub code: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(default)]
    pub server_time: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid server URL: {0}")]
    Url(String),
    /// The device id or secret is malformed; nothing was sent.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// No connection was made: nothing listens there, the name does not
    /// resolve, TLS failed…
    #[error("cannot reach the server at {server}: {reason}")]
    Connect { server: String, reason: String },
    /// The server did not answer within the HTTP client's timeout.
    #[error("the server at {server} did not answer in time")]
    Timeout { server: String },
    #[error("HTTP: {}", error_chain(.0))]
    Http(#[from] reqwest::Error),
    #[error("the server refused the request ({}, {}): {}", .0.status, .0.code, .0.detail)]
    Problem(Problem),
    #[error("unexpected response {status}: {body}")]
    Unexpected { status: StatusCode, body: String },
    /// A downloaded bundle's SHA-256 is not the one the server announced
    /// (the partial file was removed; download again).
    #[error("the downloaded file's SHA-256 is {actual}, expected {expected}")]
    Digest { expected: String, actual: String },
    /// Reading or writing a local file failed.
    #[error("local file: {0}")]
    Io(String),
}

/// A reqwest error with its causes (`error sending request: … : Connection
/// refused`), since its own message hides them.
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Turns a failure to get any answer into [`ClientError::Connect`] or
/// [`ClientError::Timeout`], naming the server and the reason plainly.
fn transport_error(error: reqwest::Error, url: &Url) -> ClientError {
    let server = url.origin().ascii_serialization();
    if error.is_timeout() {
        return ClientError::Timeout { server };
    }
    if !error.is_connect() {
        return ClientError::Http(error);
    }
    let mut source = std::error::Error::source(&error);
    let mut innermost = None;
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            let reason = match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    "connection refused (nothing listens there)".to_owned()
                }
                std::io::ErrorKind::TimedOut => "connecting timed out".to_owned(),
                _ => io.to_string(),
            };
            return ClientError::Connect { server, reason };
        }
        innermost = Some(cause.to_string());
        source = cause.source();
    }
    ClientError::Connect {
        server,
        reason: innermost.unwrap_or_else(|| error.to_string()),
    }
}

impl ClientError {
    /// The problem's stable code, when the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Problem(p) => Some(&p.code),
            _ => None,
        }
    }
}

/// What a heartbeat reports; every field is optional.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Heartbeat {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ea_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminal_build: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_login: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub equity: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeartbeatAck {
    /// The server's Unix time.
    pub server_time: i64,
}

/// The device's settings, from `GET /api/v1/device/config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceConfig {
    pub poll_interval_seconds: u64,
    pub long_poll_max_seconds: u64,
    pub server_time: i64,
    pub device_id: String,
    pub name: String,
    /// The trading configuration's revision; polls report it, so refetch
    /// only when it differs.
    #[serde(default)]
    pub config_revision: i64,
    /// The effective trading configuration.
    #[serde(default)]
    pub trading: TradingConfig,
}

/// The effective trading configuration (every field `None` when unset).
/// The server already applied `mode`, `allowed_symbols`, `symbol_map`,
/// `fixed`/`multiplier` sizing and `max_lot` to the signals it delivers;
/// the EA applies `risk_percent` sizing, `max_open_trades`,
/// `max_daily_loss`, `slippage_points` and `magic_number`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TradingConfig {
    /// `active`, `close_only` or `paused`.
    pub mode: Option<String>,
    /// `{"type": "fixed", "lots": n}`, `{"type": "multiplier", "factor": n}`
    /// or `{"type": "risk_percent", "percent": n}`.
    pub sizing: Option<serde_json::Value>,
    pub max_lot: Option<f64>,
    pub allowed_symbols: Option<Vec<String>>,
    pub symbol_map: Option<std::collections::BTreeMap<String, String>>,
    pub max_open_trades: Option<u32>,
    pub max_daily_loss: Option<f64>,
    pub slippage_points: Option<u32>,
    pub magic_number: Option<i64>,
}

/// A fetched configuration with its `ETag`, to send back as
/// `If-None-Match`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedConfig {
    pub etag: String,
    pub config: DeviceConfig,
}

/// The answer to a conditional configuration fetch.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigFetch {
    /// 304: the cached configuration is current.
    NotModified,
    /// The configuration changed (or none was cached).
    Changed(Box<CachedConfig>),
}

/// A trading signal as a device receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    pub id: String,
    pub instrument: String,
    /// `buy` or `sell`.
    pub side: String,
    /// `market`, `limit` or `stop`.
    pub order_type: String,
    pub volume: f64,
    pub entry_price: Option<f64>,
    pub stop_loss: Option<f64>,
    pub take_profit: Option<f64>,
    pub comment: Option<String>,
    pub expires_at: Option<String>,
    pub created_at: String,
    /// `open` or `close` (close the device's positions on the instrument).
    #[serde(default = "open_action")]
    pub action: String,
}

fn open_action() -> String {
    "open".to_owned()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PollResponse {
    pub signals: Vec<Signal>,
    pub server_time: i64,
    /// The trading configuration's revision: when it differs from the
    /// cached one, fetch the configuration again.
    #[serde(default)]
    pub config_revision: i64,
    /// The deployment revision: when it differs from the last one seen,
    /// ask [`DeviceClient::deployment`] for a bundle to install.
    #[serde(default)]
    pub deployment_revision: i64,
}

/// What the EA did with a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Executed,
    Rejected,
    Failed,
}

/// An acknowledgement to send.
#[derive(Debug, Clone, Serialize)]
pub struct Ack {
    pub signal_id: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fill_price: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Ack {
    pub fn new(signal_id: &str, outcome: Outcome) -> Self {
        Self {
            signal_id: signal_id.to_owned(),
            outcome,
            ticket: None,
            fill_price: None,
            message: None,
        }
    }
}

/// The server's record of an acknowledgement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AckReceipt {
    pub signal_id: String,
    pub outcome: String,
    pub ticket: Option<i64>,
    pub fill_price: Option<f64>,
    pub message: Option<String>,
    pub acknowledged_at: String,
}

/// An async client for the device API: every request is signed with a
/// fresh nonce; a `clock-skew` answer teaches it the server's clock offset
/// and the request is retried once.
#[derive(Debug)]
pub struct DeviceClient {
    http: reqwest::Client,
    base: Url,
    signer: Signer,
    /// Seconds to add to the local clock to get the server's.
    offset: AtomicI64,
}

fn local_unix_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl DeviceClient {
    /// `base_url` is the server's root, e.g. `https://eagate.example.com`.
    /// The device id and secret are checked for shape
    /// ([`ClientError::Credentials`]) before anything is sent.
    pub fn new(base_url: &str, device_id: &str, secret: &str) -> Result<Self, ClientError> {
        Self::with_http_client(reqwest::Client::new(), base_url, device_id, secret)
    }

    /// Uses a caller-configured `reqwest::Client` (TLS roots, timeouts, proxies).
    pub fn with_http_client(
        http: reqwest::Client,
        base_url: &str,
        device_id: &str,
        secret: &str,
    ) -> Result<Self, ClientError> {
        crate::credentials::check_device_id(device_id)?;
        crate::credentials::check_secret(secret)?;
        let base = Url::parse(base_url).map_err(|e| ClientError::Url(format!("{base_url:?}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(ClientError::Url(format!(
                "unsupported scheme {:?}",
                base.scheme()
            )));
        }
        Ok(Self {
            http,
            base,
            signer: Signer::new(device_id, secret),
            offset: AtomicI64::new(0),
        })
    }

    /// The learned offset of the server's clock from ours, in seconds.
    pub fn clock_offset(&self) -> i64 {
        self.offset.load(Ordering::Relaxed)
    }

    /// Sets the clock offset (e.g. restored from a previous run).
    pub fn set_clock_offset(&self, seconds: i64) {
        self.offset.store(seconds, Ordering::Relaxed);
    }

    pub async fn heartbeat(&self, heartbeat: &Heartbeat) -> Result<HeartbeatAck, ClientError> {
        let body = serde_json::to_vec(heartbeat).map_err(|e| ClientError::Url(e.to_string()))?;
        self.send_json(Method::POST, "/api/v1/device/heartbeat", Some(body))
            .await
    }

    pub async fn config(&self) -> Result<DeviceConfig, ClientError> {
        self.send_json(Method::GET, "/api/v1/device/config", None).await
    }

    /// Fetches the configuration unless `cached` is current (the server
    /// answers 304 to its `ETag` without a body).
    pub async fn config_if_changed(&self, cached: Option<&CachedConfig>) -> Result<ConfigFetch, ClientError> {
        let extra: Vec<(&str, &str)> = cached
            .map(|c| vec![("if-none-match", c.etag.as_str())])
            .unwrap_or_default();
        let response = self
            .send_with(Method::GET, "/api/v1/device/config", None, &extra)
            .await?;
        if response.status() == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(ConfigFetch::NotModified);
        }
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let config: DeviceConfig = response.json().await?;
        Ok(ConfigFetch::Changed(Box::new(CachedConfig { etag, config })))
    }

    /// Keeps `cache` current: fetches when it is empty or `revision` (from
    /// a poll) differs from the cached one, sending the cached `ETag`.
    /// Returns whether the cached configuration changed.
    pub async fn refresh_config(
        &self,
        cache: &mut Option<CachedConfig>,
        revision: Option<i64>,
    ) -> Result<bool, ClientError> {
        if let (Some(c), Some(r)) = (cache.as_ref(), revision)
            && c.config.config_revision == r
        {
            return Ok(false);
        }
        match self.config_if_changed(cache.as_ref()).await? {
            ConfigFetch::NotModified => Ok(false),
            ConfigFetch::Changed(fresh) => {
                let changed = cache.as_ref() != Some(&*fresh);
                *cache = Some(*fresh);
                Ok(changed)
            }
        }
    }

    /// Fetches pending signals, oldest first. With `wait_seconds`, the
    /// server holds the request until a signal arrives or the wait ends.
    /// The HTTP client's timeout must exceed the wait.
    pub async fn poll(
        &self,
        limit: Option<u32>,
        wait_seconds: Option<u32>,
    ) -> Result<PollResponse, ClientError> {
        let mut query = Vec::new();
        if let Some(wait) = wait_seconds {
            query.push(format!("wait={wait}"));
        }
        if let Some(limit) = limit {
            query.push(format!("limit={limit}"));
        }
        let target = if query.is_empty() {
            "/api/v1/device/poll".to_owned()
        } else {
            format!("/api/v1/device/poll?{}", query.join("&"))
        };
        self.send_json(Method::GET, &target, None).await
    }

    /// Acknowledges a signal. Safe to retry: the same outcome again returns
    /// the first receipt.
    pub async fn ack(&self, ack: &Ack) -> Result<AckReceipt, ClientError> {
        let body = serde_json::to_vec(ack).map_err(|e| ClientError::Url(e.to_string()))?;
        self.send_json(Method::POST, "/api/v1/device/ack", Some(body))
            .await
    }

    /// The reference loop: long-poll, hand each signal to `handle`, and
    /// acknowledge with what it returns, forever (until `handle` asks to
    /// stop by returning `None`). Errors other than authentication failures
    /// are retried with a short back-off; since delivery is at least once, a
    /// signal whose acknowledgement was lost comes back and `handle` must be
    /// idempotent per signal id (e.g. by checking open orders' comments).
    pub async fn run<F, Fut>(&self, wait_seconds: u32, mut handle: F) -> Result<(), ClientError>
    where
        F: FnMut(Signal) -> Fut,
        Fut: std::future::Future<Output = Option<Ack>>,
    {
        let mut backoff = std::time::Duration::from_millis(500);
        loop {
            let polled = match self.poll(None, Some(wait_seconds)).await {
                Ok(polled) => polled,
                Err(ClientError::Problem(p)) if p.status == 401 && p.code != "replayed" => {
                    return Err(ClientError::Problem(p));
                }
                Err(e) => {
                    tracing_like_warn(&e);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(30));
                    continue;
                }
            };
            backoff = std::time::Duration::from_millis(500);
            for signal in polled.signals {
                let Some(ack) = handle(signal).await else {
                    return Ok(());
                };
                // Retry the acknowledgement until it lands (it is idempotent).
                loop {
                    match self.ack(&ack).await {
                        Ok(_) => break,
                        Err(ClientError::Problem(p)) if p.status < 500 && p.code != "replayed" => {
                            return Err(ClientError::Problem(p));
                        }
                        Err(e) => {
                            tracing_like_warn(&e);
                            tokio::time::sleep(backoff).await;
                        }
                    }
                }
            }
        }
    }

    /// Sends a signed request and decodes a JSON success body.
    pub async fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        target: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        let response = self.send(method, target, body).await?;
        Ok(response.json().await?)
    }

    /// Sends a signed request (`target` is a path with optional query, e.g.
    /// `/api/v1/device/poll?wait=25`). Non-2xx answers become errors; a
    /// `clock-skew` answer corrects the clock offset and retries once.
    pub async fn send(
        &self,
        method: Method,
        target: &str,
        body: Option<Vec<u8>>,
    ) -> Result<reqwest::Response, ClientError> {
        self.send_with(method, target, body, &[]).await
    }

    /// [`Self::send`] with extra (unsigned) headers; a 304 is returned as
    /// is, for conditional requests.
    pub async fn send_with(
        &self,
        method: Method,
        target: &str,
        body: Option<Vec<u8>>,
        extra: &[(&str, &str)],
    ) -> Result<reqwest::Response, ClientError> {
        let url = self
            .base
            .join(target)
            .map_err(|e| ClientError::Url(e.to_string()))?;
        let mut retried = false;
        loop {
            let response = self.send_once(&method, &url, body.as_deref(), extra).await?;
            if response.status().is_success() || response.status() == reqwest::StatusCode::NOT_MODIFIED {
                return Ok(response);
            }
            let status = response.status();
            let server_time = response
                .headers()
                .get(eagate_protocol::SERVER_TIME_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i64>().ok());
            let text = response.text().await?;
            let problem: Option<Problem> = serde_json::from_str(&text).ok();
            match problem {
                Some(p) if p.code == "clock-skew" && !retried => {
                    if let Some(server) = server_time.or(p.server_time) {
                        self.set_clock_offset(server - local_unix_seconds());
                        retried = true;
                        continue;
                    }
                    return Err(ClientError::Problem(p));
                }
                Some(p) => return Err(ClientError::Problem(p)),
                None => return Err(ClientError::Unexpected { status, body: text }),
            }
        }
    }

    async fn send_once(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&[u8]>,
        extra: &[(&str, &str)],
    ) -> Result<reqwest::Response, ClientError> {
        // Sign exactly what goes on the request line.
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let now = local_unix_seconds() + self.clock_offset();
        let body = body.unwrap_or_default();
        let signature = self
            .signer
            .sign(method.as_str(), &target, body, now, &new_nonce());
        let mut request = self.http.request(method.clone(), url.clone());
        for (name, value) in signature.headers() {
            request = request.header(name, value);
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        if !body.is_empty() {
            request = request
                .header("content-type", "application/json")
                .body(body.to_vec());
        }
        request.send().await.map_err(|e| transport_error(e, url))
    }
}

fn tracing_like_warn(error: &ClientError) {
    eprintln!("eagate-client: {error}; retrying");
}
