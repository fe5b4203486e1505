//! Deployments on the device side: the target to install, bundle download
//! with SHA-256 verification and resumption (`Range`), and status reports.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::client::{ClientError, DeviceClient};

/// A bundle's metadata, as the server describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleInfo {
    pub id: String,
    pub name: String,
    pub version: String,
    pub notes: String,
    pub size: u64,
    /// 64 lowercase hex digits.
    pub sha256: String,
    pub created_at: String,
}

/// What the device should install now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentTarget {
    pub deployment_id: String,
    /// `pending` or `downloading`.
    pub status: String,
    pub bundle: BundleInfo,
    pub download_path: String,
    /// When the server counts the device as failed (`timeout`), if set.
    pub deadline: Option<String>,
}

/// A progress report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentStatus {
    Downloading,
    Installed,
    Failed,
}

impl DeploymentStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Downloading => "downloading",
            Self::Installed => "installed",
            Self::Failed => "failed",
        }
    }
}

/// The server's receipt for a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReceipt {
    pub deployment_id: String,
    pub status: String,
    pub reason: Option<String>,
    pub updated_at: String,
    pub deployment_state: String,
}

/// How a download went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Downloaded {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    /// Bytes already on disk from an earlier, interrupted download.
    pub resumed_from: u64,
}

fn io(error: std::io::Error, path: &Path) -> ClientError {
    ClientError::Io(format!("{}: {error}", path.display()))
}

/// The partial file a download resumes from: `<path>.part`.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

fn sha256_of(path: &Path) -> Result<String, ClientError> {
    let mut file = std::fs::File::open(path).map_err(|e| io(e, path))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buffer).map_err(|e| io(e, path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(eagate_protocol::hex(&hasher.finalize()))
}

impl DeviceClient {
    /// The deployment this device should work on, or `None` (204).
    pub async fn deployment(&self) -> Result<Option<DeploymentTarget>, ClientError> {
        let response = self.send(Method::GET, "/api/v1/device/deployment", None).await?;
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        Ok(Some(response.json().await?))
    }

    /// Reports the device's status in a deployment (`reason` with
    /// `Failed`). Safe to retry: the same status again changes nothing.
    pub async fn report_status(
        &self,
        deployment_id: &str,
        status: DeploymentStatus,
        reason: Option<&str>,
    ) -> Result<StatusReceipt, ClientError> {
        let body = serde_json::json!({"status": status.as_str(), "reason": reason});
        let body = serde_json::to_vec(&body).map_err(|e| ClientError::Io(e.to_string()))?;
        self.send_json(
            Method::POST,
            &format!("/api/v1/device/deployments/{deployment_id}/status"),
            Some(body),
        )
        .await
    }

    /// Downloads `bundle` to `path`, verifying its SHA-256. Bytes arrive in
    /// `<path>.part`; a later call resumes from what is there (`Range`,
    /// with `If-Range` so a changed file starts over). A digest mismatch
    /// removes the partial file and fails with [`ClientError::Digest`].
    pub async fn download_bundle(&self, bundle: &BundleInfo, path: &Path) -> Result<Downloaded, ClientError> {
        let part = partial_path(path);
        let mut have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if have > bundle.size {
            std::fs::remove_file(&part).map_err(|e| io(e, &part))?;
            have = 0;
        }
        let etag = format!("\"{}\"", bundle.sha256);
        let range = format!("bytes={have}-");
        let extra: Vec<(&str, &str)> = if have > 0 && have < bundle.size {
            vec![("range", range.as_str()), ("if-range", etag.as_str())]
        } else {
            Vec::new()
        };
        let resumed_from = if have == bundle.size && have > 0 {
            have
        } else {
            let mut response = self
                .send_with(
                    Method::GET,
                    &format!("/api/v1/device/bundles/{}", bundle.id),
                    None,
                    &extra,
                )
                .await?;
            let resumed = response.status() == StatusCode::PARTIAL_CONTENT;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(resumed)
                .truncate(!resumed)
                .open(&part)
                .map_err(|e| io(e, &part))?;
            while let Some(chunk) = response.chunk().await? {
                file.write_all(&chunk).map_err(|e| io(e, &part))?;
            }
            file.sync_all().map_err(|e| io(e, &part))?;
            if resumed { have } else { 0 }
        };
        let actual = sha256_of(&part)?;
        if actual != bundle.sha256 {
            let _ = std::fs::remove_file(&part);
            return Err(ClientError::Digest {
                expected: bundle.sha256.clone(),
                actual,
            });
        }
        std::fs::rename(&part, path).map_err(|e| io(e, path))?;
        Ok(Downloaded {
            path: path.to_owned(),
            size: bundle.size,
            sha256: actual,
            resumed_from,
        })
    }
}
