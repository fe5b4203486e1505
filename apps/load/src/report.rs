//! Tables on stdout and JSON files under the output directory.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

/// A plain-text table (also valid Markdown).
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|s| (*s).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let cols = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let padded: Vec<String> = (0..cols)
                .map(|i| {
                    let cell = cells.get(i).map_or("", String::as_str);
                    format!("{cell:<width$}", width = widths[i])
                })
                .collect();
            format!("| {} |", padded.join(" | "))
        };
        let mut out = vec![line(&self.header)];
        out.push(format!(
            "|{}|",
            widths
                .iter()
                .map(|w| "-".repeat(w + 2))
                .collect::<Vec<_>>()
                .join("|")
        ));
        out.extend(self.rows.iter().map(|r| line(r)));
        out.join("\n")
    }
}

/// `x` with thousands written as `12.3k`.
pub fn rate(x: f64) -> String {
    if x >= 10_000.0 {
        format!("{:.1}k", x / 1000.0)
    } else if x >= 1000.0 {
        format!("{:.2}k", x / 1000.0)
    } else {
        format!("{x:.0}")
    }
}

/// A share as a percentage with one decimal.
pub fn percent(ratio: f64) -> String {
    if ratio.is_nan() {
        "–".to_owned()
    } else {
        format!("{:.1}%", ratio * 100.0)
    }
}

/// KiB as MB (10^6 bytes), one decimal.
pub fn mb(kib: u64) -> String {
    format!("{:.1} MB", kib as f64 * 1024.0 / 1e6)
}

/// The commit being measured (with `-dirty` when the tree has changes).
pub fn git_describe() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let commit = run(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty { format!("{commit}-dirty") } else { commit }
}

/// Writes `value` to `<dir>/result.json` and `<out>/<scenario>.json`
/// (the latest of each scenario); returns the latter.
pub fn write_json(out: &Path, dir: &Path, scenario: &str, value: &serde_json::Value) -> Result<PathBuf> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(dir.join("result.json"), &text).with_context(|| dir.display().to_string())?;
    let latest = out.join(format!("{scenario}.json"));
    std::fs::write(&latest, &text).with_context(|| latest.display().to_string())?;
    Ok(latest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_aligned_markdown() {
        let mut t = Table::new(&["target", "req/s"]);
        t.row(vec!["bare actix-web".into(), "81.7k".into()]);
        t.row(vec!["eagate".into(), "4.53k".into()]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "| target         | req/s |");
        assert_eq!(lines[1], "|----------------|-------|");
        assert_eq!(lines[3], "| eagate         | 4.53k |");
    }

    #[test]
    fn formats_numbers() {
        assert_eq!(rate(81_700.0), "81.7k");
        assert_eq!(rate(4_530.0), "4.53k");
        assert_eq!(rate(648.4), "648");
        assert_eq!(percent(0.0554), "5.5%");
        assert_eq!(percent(f64::NAN), "–");
        assert_eq!(mb(40_000), "41.0 MB");
    }
}
