use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::{Method, StatusCode, Url};
use serde::{Deserialize, Serialize};

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
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the server refused the request ({}, {}): {}", .0.status, .0.code, .0.detail)]
    Problem(Problem),
    #[error("unexpected response {status}: {body}")]
    Unexpected { status: StatusCode, body: String },
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

#[derive(Debug, Clone, Deserialize)]
pub struct HeartbeatAck {
    /// The server's Unix time.
    pub server_time: i64,
}

/// The device's settings, from `GET /api/v1/device/config`.
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceConfig {
    pub poll_interval_seconds: u64,
    pub long_poll_max_seconds: u64,
    pub server_time: i64,
    pub device_id: String,
    pub name: String,
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
        let base = Url::parse(base_url).map_err(|e| ClientError::Url(e.to_string()))?;
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
        let url = self
            .base
            .join(target)
            .map_err(|e| ClientError::Url(e.to_string()))?;
        let mut retried = false;
        loop {
            let response = self.send_once(&method, &url, body.as_deref()).await?;
            if response.status().is_success() {
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
        if !body.is_empty() {
            request = request
                .header("content-type", "application/json")
                .body(body.to_vec());
        }
        Ok(request.send().await?)
    }
}
