//! Owner-side calls that prepare and drive a scenario (registration, login,
//! devices, publish, cancel, metrics), through eagate's public HTTP API.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use eagate_client::Signer;
use serde::Deserialize;
use serde_json::json;

use crate::presign::Device;

/// The `EAGATE_METRICS_TOKEN` the harness gives its servers: in production
/// `/metrics` answers 404 without one.
pub const METRICS_TOKEN: &str = "eagate-load-metrics-token";

/// The password of every account the harness creates (never a real one).
pub const PASSWORD: &str = "load-test-password-0123";

#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

#[derive(Deserialize)]
struct Token {
    access_token: String,
}

#[derive(Deserialize)]
struct DeviceBody {
    id: String,
}

#[derive(Deserialize)]
struct Registered {
    device: DeviceBody,
    secret: String,
}

#[derive(Deserialize)]
struct Published {
    id: String,
}

/// The value of an unlabelled metric in Prometheus text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        if !rest.starts_with(' ') {
            return None;
        }
        rest.split_whitespace().next()?.parse().ok()
    })
}

impl Api {
    pub fn new(addr: SocketAddr) -> Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .pool_max_idle_per_host(64)
                .build()?,
            base: format!("http://{addr}"),
        })
    }

    async fn checked(&self, response: reqwest::Response, what: &str) -> Result<reqwest::Response> {
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            bail!("{what}: {status} {body}");
        }
        Ok(response)
    }

    /// Registers `username` and logs in; returns an access token.
    pub async fn owner(&self, username: &str) -> Result<String> {
        let r = self
            .http
            .post(format!("{}/api/v1/auth/register", self.base))
            .json(&json!({"email": format!("{username}@load.example.com"), "username": username, "password": PASSWORD}))
            .send()
            .await?;
        self.checked(r, "registering the load-test owner").await?;
        self.login_token(username).await
    }

    pub async fn login_token(&self, username: &str) -> Result<String> {
        let r = self
            .http
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"login": username, "password": PASSWORD}))
            .send()
            .await?;
        let token: Token = self.checked(r, "logging in").await?.json().await?;
        Ok(token.access_token)
    }

    /// One login attempt; returns the status code.
    pub async fn login_status(&self, login: &str, password: &str) -> Result<u16> {
        let r = self
            .http
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"login": login, "password": password}))
            .send()
            .await?;
        let status = r.status().as_u16();
        let _ = r.bytes().await?;
        Ok(status)
    }

    /// Registers `count` devices, `concurrency` at a time.
    pub async fn devices(&self, token: &str, count: usize, concurrency: usize) -> Result<Vec<Device>> {
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..concurrency.max(1) {
            let api = self.clone();
            let token = token.to_owned();
            let next = Arc::clone(&next);
            tasks.spawn(async move {
                let mut made = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= count {
                        return Ok::<_, anyhow::Error>(made);
                    }
                    let r = api
                        .http
                        .post(format!("{}/api/v1/devices", api.base))
                        .bearer_auth(&token)
                        .json(&json!({"name": format!("load-{i:06}")}))
                        .send()
                        .await?;
                    let reg: Registered = api.checked(r, "registering a device").await?.json().await?;
                    made.push((
                        i,
                        Device {
                            signer: Signer::new(&reg.device.id, &reg.secret),
                            id: reg.device.id,
                        },
                    ));
                }
            });
        }
        let mut all = Vec::with_capacity(count);
        while let Some(done) = tasks.join_next().await {
            all.extend(done.context("device registration task")??);
        }
        all.sort_by_key(|(i, _)| *i);
        Ok(all.into_iter().map(|(_, d)| d).collect())
    }

    /// Publishes a market order to every active device; returns its id.
    pub async fn publish_all(&self, token: &str) -> Result<String> {
        let r = self
            .http
            .post(format!("{}/api/v1/signals", self.base))
            .bearer_auth(token)
            .json(&json!({"instrument": "EURUSD", "side": "buy", "order_type": "market", "volume": 0.1}))
            .send()
            .await?;
        let p: Published = self.checked(r, "publishing").await?.json().await?;
        Ok(p.id)
    }

    /// Publishes to one device; returns the signal id.
    pub async fn publish_to(&self, token: &str, device: &str) -> Result<String> {
        let r = self
            .http
            .post(format!("{}/api/v1/signals", self.base))
            .bearer_auth(token)
            .json(&json!({"instrument": "EURUSD", "side": "sell", "order_type": "market", "volume": 0.1, "device_ids": [device]}))
            .send()
            .await?;
        let p: Published = self.checked(r, "publishing").await?.json().await?;
        Ok(p.id)
    }

    pub async fn cancel(&self, token: &str, signal: &str) -> Result<()> {
        let r = self
            .http
            .post(format!("{}/api/v1/signals/{signal}/cancel", self.base))
            .bearer_auth(token)
            .send()
            .await?;
        self.checked(r, "cancelling").await?;
        Ok(())
    }

    /// `long_polls_waiting` from `/metrics`.
    pub async fn long_polls_waiting(&self) -> Result<u64> {
        let response = self
            .http
            .get(format!("{}/metrics", self.base))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(anyhow!("GET /metrics answered {}", response.status()));
        }
        let text = response.text().await?;
        Ok(metric(&text, "long_polls_waiting").map_or(0, |v| v as u64))
    }

    /// Waits until `/metrics` reports at least `n` waiting long-polls.
    pub async fn await_waiting(&self, n: u64, timeout: Duration) -> Result<u64> {
        let started = std::time::Instant::now();
        loop {
            let waiting = self.long_polls_waiting().await?;
            if waiting >= n {
                return Ok(waiting);
            }
            if started.elapsed() > timeout {
                return Err(anyhow!(
                    "only {waiting} of {n} long-polls waiting after {timeout:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_unlabelled_metrics() {
        let text = "# TYPE long_polls_waiting gauge\nlong_polls_waiting 1000\nlong_polls_waiting_total 3\n\
                    http_requests_total{route=\"/healthz\"} 5\n";
        assert_eq!(metric(text, "long_polls_waiting"), Some(1000.0));
        assert_eq!(metric(text, "http_requests_total"), None);
        assert_eq!(metric("", "long_polls_waiting"), None);
    }
}
