//! Reading callgrind dumps and `callgrind_annotate` output.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use serde::Serialize;

/// The instruction total (`Ir`) of a callgrind dump: its `totals:` line,
/// else its `summary:` line.
pub fn dump_total(text: &str) -> Option<u64> {
    let find = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    };
    find("totals:").or_else(|| find("summary:"))
}

/// One function of an inclusive profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileLine {
    /// Inclusive instructions per request.
    pub per_request: u64,
    /// Share of all instructions in the dump, percent.
    pub percent: f64,
    pub function: String,
}

/// The first `top` function lines of `callgrind_annotate --inclusive=yes`
/// output, divided by `requests`.
pub fn parse_annotate(output: &str, total: u64, requests: u64, top: usize) -> Vec<ProfileLine> {
    let mut lines = Vec::new();
    let mut in_functions = false;
    for line in output.lines() {
        if !in_functions {
            // The function table's header names `file:function`.
            if line.contains("file:function") {
                in_functions = true;
            }
            continue;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("---") {
            if !lines.is_empty() && trimmed.starts_with("---") {
                break;
            }
            continue;
        }
        let Some((count, rest)) = trimmed.split_once(char::is_whitespace) else {
            continue;
        };
        let Ok(ir) = count.replace(',', "").parse::<u64>() else {
            continue;
        };
        let mut function = rest.trim();
        // Newer valgrind prints "(12.3%)" after the count.
        if function.starts_with('(')
            && let Some(close) = function.find(')')
        {
            function = function[close + 1..].trim();
        }
        lines.push(ProfileLine {
            per_request: ir / requests.max(1),
            percent: if total == 0 {
                0.0
            } else {
                ir as f64 * 100.0 / total as f64
            },
            function: shorten(function),
        });
        if lines.len() >= top {
            break;
        }
    }
    lines
}

/// Longest function name kept whole in tables.
const MAX_NAME: usize = 120;

/// Drops the `[/path/to/binary]` suffix and a `file:` prefix, and cuts
/// the middle out of very long (generic) names.
fn shorten(function: &str) -> String {
    let f = match function.rfind(" [") {
        Some(i) if function.ends_with(']') => &function[..i],
        _ => function,
    };
    // `???:name` or `./path/file.c:name`: a file prefix has no spaces or `<`.
    let f = match f.split_once(':') {
        Some((file, rest)) if !file.contains(['<', ' ']) && !rest.starts_with(':') => rest,
        _ => f,
    };
    let chars: Vec<char> = f.chars().collect();
    if chars.len() <= MAX_NAME {
        return f.to_owned();
    }
    let head: String = chars[..MAX_NAME / 2].iter().collect();
    let tail: String = chars[chars.len() - MAX_NAME / 2 + 1..].iter().collect();
    format!("{head}…{tail}")
}

/// The newest dump written for `prefix` (`<prefix>.<n>` or `<prefix>`),
/// other than those in `seen`.
pub fn newest_dump(prefix: &Path, seen: &[PathBuf]) -> Result<PathBuf> {
    let dir = prefix.parent().ok_or_else(|| anyhow!("bad callgrind prefix"))?;
    let stem = prefix
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow!("bad callgrind prefix"))?
        .to_owned();
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).with_context(|| dir.display().to_string())? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&stem) || seen.contains(&entry.path()) {
            continue;
        }
        let modified = entry.metadata()?.modified()?;
        if best.as_ref().is_none_or(|(t, _)| modified > *t) {
            best = Some((modified, entry.path()));
        }
    }
    best.map(|(_, p)| p)
        .ok_or_else(|| anyhow!("no callgrind dump {stem}* in {}", dir.display()))
}

/// `callgrind_control ARG PID`.
pub async fn control(arg: &str, pid: u32) -> Result<()> {
    let out = tokio::process::Command::new("callgrind_control")
        .arg(arg)
        .arg(pid.to_string())
        .output()
        .await
        .context("running callgrind_control")?;
    if !out.status.success() {
        bail!(
            "callgrind_control {arg} {pid} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// `callgrind_annotate --inclusive=yes` of `dump`.
pub async fn annotate_inclusive(dump: &Path) -> Result<String> {
    let out = tokio::process::Command::new("callgrind_annotate")
        .arg("--inclusive=yes")
        .arg(dump)
        .output()
        .await
        .context("running callgrind_annotate")?;
    if !out.status.success() {
        bail!(
            "callgrind_annotate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Fails with advice when valgrind's tools are missing.
pub fn require() -> Result<()> {
    for tool in ["valgrind", "callgrind_control", "callgrind_annotate"] {
        if std::process::Command::new(tool).arg("--help").output().is_err() {
            bail!("{tool} is not installed: `apt-get install -y valgrind`");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_totals_or_summary() {
        let dump = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nsummary: 420912345\n\nfn=main\n1 5\ntotals: 420912345\n";
        assert_eq!(dump_total(dump), Some(420_912_345));
        assert_eq!(dump_total("events: Ir\nsummary: 77\n"), Some(77));
        assert_eq!(dump_total("events: Ir\n"), None);
    }

    #[test]
    fn parses_old_and_new_annotate_formats() {
        let old = "\
--------------------------------------------------------------------------------
Ir
--------------------------------------------------------------------------------
420,000,000  PROGRAM TOTALS

--------------------------------------------------------------------------------
Ir           file:function
--------------------------------------------------------------------------------
400,000,000  ???:std::sys::thread_start [/work/target/release/eagate]
210,000,000  ???:eagate_server::routes::device_api::poll [/work/target/release/eagate]
 42,000,000  ???:tracing_subscriber::fmt::format::json [/work/target/release/eagate]
";
        let lines = parse_annotate(old, 420_000_000, 1000, 2);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].per_request, 400_000);
        assert_eq!(lines[1].function, "eagate_server::routes::device_api::poll");
        assert!((lines[1].percent - 50.0).abs() < 1e-9);

        let new = "\
-- Summary
Ir__________________
420,000,000 (100.0%)  PROGRAM TOTALS

-- Function summary
Ir______________________  file:function
400,000,000 (95.2%)  ???:thread_start [/x/eagate]
 42,000,000 (10.0%)  ???:serde_json::ser::to_writer

-- Auto-annotated source
";
        let lines = parse_annotate(new, 420_000_000, 1000, 10);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].function, "thread_start");
        assert_eq!(lines[1].per_request, 42_000);
    }

    #[test]
    fn shortens_names() {
        assert_eq!(
            shorten("???:tokio::runtime::task::raw::poll [/x/eagate]"),
            "tokio::runtime::task::raw::poll"
        );
        assert_eq!(
            shorten("./nptl/./nptl/pthread_create.c:start_thread"),
            "start_thread"
        );
        assert_eq!(
            shorten("core::ops::function::FnOnce::call_once"),
            "core::ops::function::FnOnce::call_once"
        );
        assert_eq!(shorten("<a::B as c::D>::poll"), "<a::B as c::D>::poll");
        let long = format!("<{} as x::Y>::call", "a".repeat(300));
        let short = shorten(&long);
        assert_eq!(short.chars().count(), MAX_NAME);
        assert!(short.ends_with("as x::Y>::call") && short.contains('…'));
    }

    #[test]
    fn finds_the_newest_unseen_dump() {
        let dir = std::env::temp_dir().join(format!("eagate-load-cg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let prefix = dir.join("callgrind.eagate");
        std::fs::write(dir.join("callgrind.eagate.1"), "a").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.join("callgrind.eagate.2"), "b").unwrap();
        std::fs::write(dir.join("other"), "c").unwrap();
        let newest = newest_dump(&prefix, &[]).unwrap();
        assert!(newest.ends_with("callgrind.eagate.2"));
        let older = newest_dump(&prefix, &[newest]).unwrap();
        assert!(older.ends_with("callgrind.eagate.1"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
