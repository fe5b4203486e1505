//! Running wrk with `wrk/replay.lua` and reading its result line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use crate::stats::Latency;

/// The replay script, compiled in and written next to the results.
pub const REPLAY_LUA: &str = include_str!("../wrk/replay.lua");

/// wrk's load shape.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub threads: u32,
    pub connections: u32,
    pub duration: Duration,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Errors {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    /// Responses other than 2xx/3xx.
    pub status: u64,
    pub timeout: u64,
}

impl Errors {
    pub fn total(&self) -> u64 {
        self.connect + self.read + self.write + self.status + self.timeout
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
struct LatencyLine {
    p50: u64,
    p90: u64,
    p99: u64,
    max: u64,
    mean: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
struct ResultLine {
    requests: u64,
    duration_us: u64,
    errors: Errors,
    latency_us: LatencyLine,
    wraps: u64,
}

/// One wrk run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub requests: u64,
    pub seconds: f64,
    pub rps: f64,
    pub latency_us: Latency,
    pub mean_us: f64,
    pub errors: Errors,
    /// Times the request list ran out and started again (0 for a valid
    /// signed run).
    pub wraps: u64,
}

/// Reads the `EAGATE_LOAD_JSON` line from wrk's output.
pub fn parse_output(stdout: &str) -> Result<Run> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("EAGATE_LOAD_JSON "))
        .ok_or_else(|| anyhow!("wrk printed no result line; output:\n{stdout}"))?;
    let r: ResultLine = serde_json::from_str(line).with_context(|| format!("wrk result line {line:?}"))?;
    let seconds = r.duration_us as f64 / 1e6;
    if seconds <= 0.0 {
        bail!("wrk reported a zero duration");
    }
    Ok(Run {
        requests: r.requests,
        seconds,
        rps: r.requests as f64 / seconds,
        latency_us: Latency {
            p50: r.latency_us.p50,
            p90: r.latency_us.p90,
            p99: r.latency_us.p99,
            max: r.latency_us.max,
        },
        mean_us: r.latency_us.mean,
        errors: r.errors,
        wraps: r.wraps,
    })
}

/// Writes the replay script into `dir` and returns its path.
pub fn install_script(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("replay.lua");
    std::fs::write(&path, REPLAY_LUA).with_context(|| path.display().to_string())?;
    Ok(path)
}

/// Fails with advice when wrk is missing.
pub fn require() -> Result<()> {
    match std::process::Command::new("wrk").arg("--version").output() {
        Ok(_) => Ok(()),
        Err(_) => bail!("wrk is not installed: `apt-get install -y wrk` (Debian package `wrk`)"),
    }
}

/// Replays `requests` (a file from [`crate::presign`]) against `addr`.
/// `cycle`: repeating the list is fine (unsigned requests, bare handler).
pub async fn run(script: &Path, addr: SocketAddr, requests: &Path, cycle: bool, shape: Shape) -> Result<Run> {
    let mut cmd = tokio::process::Command::new("wrk");
    cmd.arg(format!("-t{}", shape.threads))
        .arg(format!("-c{}", shape.connections))
        .arg(format!("-d{}s", shape.duration.as_secs().max(1)))
        .arg("--timeout")
        .arg("10s")
        .arg("-s")
        .arg(script)
        .arg(format!("http://{addr}"))
        .arg("--")
        .arg(requests);
    if cycle {
        cmd.arg("cycle");
    }
    let out = cmd.kill_on_drop(true).output().await.context("running wrk")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed ({}): {}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_output(&stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_result_line() {
        let out = "Running 10s test @ http://127.0.0.1:1234\n  1 threads and 64 connections\n\
                   EAGATE_LOAD_JSON {\"requests\":45300,\"duration_us\":10000000,\"bytes\":123,\
                   \"errors\":{\"connect\":0,\"read\":0,\"write\":0,\"status\":3,\"timeout\":1},\
                   \"latency_us\":{\"p50\":12000,\"p90\":20000,\"p99\":31000,\"max\":45000,\"mean\":13000.5},\"wraps\":0}\n";
        let run = parse_output(out).unwrap();
        assert_eq!(run.requests, 45300);
        assert!((run.rps - 4530.0).abs() < 1e-9);
        assert_eq!(run.latency_us.p99, 31000);
        assert_eq!(run.errors.total(), 4);
        assert_eq!(run.wraps, 0);
    }

    #[test]
    fn missing_or_broken_result_lines_are_errors() {
        assert!(parse_output("unable to connect to 127.0.0.1:1 Connection refused").is_err());
        assert!(parse_output("EAGATE_LOAD_JSON {\"requests\":1}").is_err());
    }

    #[test]
    fn the_script_is_the_one_in_the_repository() {
        assert!(REPLAY_LUA.contains("EAGATE_LOAD_JSON"));
        assert!(REPLAY_LUA.contains("\\30"), "records end with 0x1E");
        assert_eq!(crate::presign::RECORD_SEPARATOR, 0x1e);
    }
}
